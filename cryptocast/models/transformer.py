"""Vanilla Transformer encoder baseline (Vaswani et al. 2017, "Attention Is All You Need").

Same skeleton as ``performer_bilstm`` so the comparison isolates the attention and feed-forward
choices: softmax multi-head attention (``scaled_dot_product_attention``, which picks a fused kernel)
and a GELU MLP feed-forward of width ``dim_feedforward`` (set explicitly: PyTorch's default 2048
is several times slower here for nothing).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cryptocast.models.common import (
    Dropout,
    EncoderForecaster,
    MultiHeadSelfAttention,
    encoder_args,
)
from cryptocast.models.registry import register


class SoftmaxSelfAttention(MultiHeadSelfAttention):
    """Exact multi-head self-attention: (B, L, D) -> (B, L, D)."""

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        # No dropout on the attention probabilities: the Performer has no attention matrix to drop
        # out, so both models regularise only the residual branches (like for like); on the CPU
        # it would also force SDPA's math path, materialising and masking (B, H, L, L).
        return F.scaled_dot_product_attention(q, k, v)  # (B, H, L, Dh)


class TransformerBlock(nn.Module):
    """Post-norm encoder block: (B, L, D) -> (B, L, D)."""

    def __init__(self, d_model: int, n_heads: int, dim_feedforward: int, dropout: float) -> None:
        super().__init__()
        self.attn = SoftmaxSelfAttention(d_model, n_heads, dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(
            nn.Linear(d_model, dim_feedforward),
            nn.GELU(),
            Dropout(dropout),
            nn.Linear(dim_feedforward, d_model),
        )
        self.dropout = Dropout(dropout)
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.attn(x))  # (B, L, D)
        return self.norm2(x + self.dropout(self.ff(x)))  # (B, L, D)


class TransformerForecaster(EncoderForecaster):
    def __init__(
        self,
        n_features: int,
        horizon: int,
        lookback: int,
        dim_feedforward: int = 128,
        **encoder: Any,  # d_model, n_heads, n_layers, dropout, pooling, quantiles (common.py)
    ) -> None:
        def block(d_model: int, n_heads: int, dropout: float) -> TransformerBlock:
            return TransformerBlock(d_model, n_heads, dim_feedforward, dropout)

        super().__init__(n_features, horizon, lookback, block, **encoder)


@register("transformer")
def build_transformer(cfg, n_features: int, horizon: int, lookback: int) -> TransformerForecaster:
    return TransformerForecaster(
        n_features, horizon, lookback, dim_feedforward=cfg.dim_feedforward, **encoder_args(cfg)
    )
