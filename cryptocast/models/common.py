"""Pieces shared by the attention models: positional encoding and the forecasting head."""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal_table(length: int, d_model: int) -> torch.Tensor:
    """(length, d_model) sinusoidal positions ("Attention Is All You Need", Vaswani et al. 2017)."""
    pos = torch.arange(length, dtype=torch.float32).unsqueeze(1)  # (L, 1)
    div = torch.exp(
        torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model)
    )
    table = torch.zeros(length, d_model)
    table[:, 0::2] = torch.sin(pos * div)
    table[:, 1::2] = torch.cos(pos * div[: d_model // 2])
    return table


class PositionalEncoding(nn.Module):
    """Adds sinusoidal positions; the table is rebuilt (not saved) so it never goes stale."""

    def __init__(self, d_model: int, max_len: int) -> None:
        super().__init__()
        self.d_model = d_model
        self.register_buffer("table", sinusoidal_table(max_len, d_model), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        L = x.shape[1]  # x: (B, L, D)
        if self.table.shape[0] < L:  # longer window than built for: extend once
            self.table = sinusoidal_table(L, self.d_model).to(self.table.device)
        return x + self.table[:L].to(x.dtype)  # (B, L, D)


class ForecastHead(nn.Module):
    """Pools the encoder output over time ("last" position or "mean") and maps it to H outputs."""

    def __init__(self, d_in: int, horizon: int, pooling: str = "last") -> None:
        super().__init__()
        if pooling not in ("last", "mean"):
            raise ValueError(f"pooling must be 'last' or 'mean', got {pooling!r}")
        self.pooling = pooling
        self.proj = nn.Linear(d_in, horizon)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        pooled = h[:, -1] if self.pooling == "last" else h.mean(dim=1)  # (B, L, D) -> (B, D)
        return self.proj(pooled)  # (B, H)


class EncoderStem(nn.Module):
    """Input projection F -> d_model plus positional encoding: (B, L, F) -> (B, L, D)."""

    def __init__(self, n_features: int, d_model: int, max_len: int, dropout: float) -> None:
        super().__init__()
        self.proj = nn.Linear(n_features, d_model)
        self.pos = PositionalEncoding(d_model, max_len)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.pos(self.proj(x)))
