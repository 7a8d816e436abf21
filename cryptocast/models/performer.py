"""Performer encoder with FAVOR+ attention and a BiLSTM feed-forward block.

The forecasting model of Khaniki & Manthouri (2024), "Enhancing Price Prediction in
Cryptocurrency Using Transformer Neural Network and Technical Indicators": a Performer
(Choromanski et al. 2020, FAVOR+ attention, see ``favor.py``) whose position-wise MLP is replaced
by a bidirectional LSTM, so each block mixes time both globally (attention) and sequentially (LSTM).

(B, L, F) -> Linear F->D + sinusoidal positions -> N x [FAVOR+ MHA, residual, LayerNorm;
BiLSTM (hidden per direction), Linear 2*hidden->D, dropout, residual, LayerNorm] -> pool -> (B, H).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cryptocast.models.common import Dropout, EncoderForecaster, encoder_args, run_recurrent
from cryptocast.models.favor import FastAttention, FavorSelfAttention
from cryptocast.models.registry import register


class PerformerBiLSTMBlock(nn.Module):
    """One post-norm encoder block: (B, L, D) -> (B, L, D)."""

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        nb_features: int | None,
        redraw_interval: int,
        lstm_hidden: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.attn = FavorSelfAttention(d_model, n_heads, nb_features, redraw_interval, dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.lstm = nn.LSTM(d_model, lstm_hidden, batch_first=True, bidirectional=True)
        self.ff_out = nn.Linear(2 * lstm_hidden, d_model)
        self.dropout = Dropout(dropout)
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.attn(x))  # (B, L, D)
        h, _ = run_recurrent(self.lstm, x)  # (B, L, 2*hidden), float32 (training/precision.py)
        return self.norm2(x + self.dropout(self.ff_out(h)))  # (B, L, D)


class PerformerBiLSTM(EncoderForecaster):
    def __init__(
        self,
        n_features: int,
        horizon: int,
        lookback: int,
        nb_features: int | None = None,
        redraw_interval: int = 1000,
        lstm_hidden: int = 64,
        **encoder: Any,  # d_model, n_heads, n_layers, dropout, pooling, quantiles (common.py)
    ) -> None:
        def block(d_model: int, n_heads: int, dropout: float) -> PerformerBiLSTMBlock:
            return PerformerBiLSTMBlock(
                d_model, n_heads, nb_features, redraw_interval, lstm_hidden, dropout
            )

        super().__init__(n_features, horizon, lookback, block, **encoder)

    def redraw_projections(self) -> None:
        """Redraw every layer's FAVOR+ random features now (e.g. at the start of training)."""
        for m in self.modules():
            if isinstance(m, FastAttention):
                m.redraw_projection()


@register("performer_bilstm")
def build_performer_bilstm(cfg, n_features: int, horizon: int, lookback: int) -> PerformerBiLSTM:
    return PerformerBiLSTM(
        n_features,
        horizon,
        lookback,
        nb_features=cfg.nb_features,
        redraw_interval=cfg.redraw_interval,
        lstm_hidden=cfg.lstm_hidden,
        **encoder_args(cfg),
    )
