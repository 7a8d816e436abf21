"""Stacked LSTM and GRU baselines (Hochreiter & Schmidhuber 1997; Cho et al. 2014).

(B, L, F) -> stacked recurrent layers (dropout between layers) -> head on the last step (or the
mean over steps, per ``model.pooling``) -> (B, H).
"""

from __future__ import annotations

import torch
from torch import nn

from cryptocast.models.common import make_head, run_recurrent
from cryptocast.models.registry import register


class RecurrentForecaster(nn.Module):
    def __init__(
        self,
        cell: str,
        n_features: int,
        horizon: int,
        hidden_size: int,
        num_layers: int,
        dropout: float,
        pooling: str = "last",
        quantiles=None,
    ) -> None:
        super().__init__()
        rnn_cls = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.rnn = rnn_cls(
            n_features,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            # nn.LSTM/GRU apply dropout between layers only; it warns when there is one layer.
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.head = make_head(hidden_size, horizon, pooling, quantiles)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = run_recurrent(
            self.rnn, x
        )  # (B, L, F) -> (B, L, hidden), float32 (training/precision.py)
        return self.head(h)  # (B, H), or (B, H, Q) with quantiles


def _build(cell: str, cfg, n_features: int, horizon: int) -> RecurrentForecaster:
    return RecurrentForecaster(
        cell,
        n_features,
        horizon,
        cfg.hidden_size,
        cfg.num_layers,
        cfg.dropout,
        cfg.pooling,
        cfg.quantiles,
    )


@register("lstm")
def build_lstm(cfg, n_features: int, horizon: int, lookback: int) -> RecurrentForecaster:
    return _build("lstm", cfg, n_features, horizon)


@register("gru")
def build_gru(cfg, n_features: int, horizon: int, lookback: int) -> RecurrentForecaster:
    return _build("gru", cfg, n_features, horizon)
