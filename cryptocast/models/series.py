"""The learned series embedding of a pooled model (``model.series_embedding``).

A pooled model (features/pooled.py) trains on windows of many series. With the embedding on,
each series gets a learned vector of the input's width, added to every time step of its windows
before the wrapped registry model sees them, so the network can shift its behaviour per series
(the "series id as a learned input" of global forecasting models, e.g. DeepAR's item embedding,
Salinas et al. 2020). The series' index rides in one extra last column of the scaled table
(``features.pooled.with_series_id``), so the training loop, ``predict_scaled`` and the
``Predictor`` pass windows through unchanged. Off (the default), the model never learns which
series a window came from and can forecast a series it never trained on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from cryptocast.errors import ConfigError
from cryptocast.models.registry import build_model

if TYPE_CHECKING:
    from cryptocast.config.schema import ModelConfig


def build_pooled_model(
    cfg: ModelConfig, n_features: int, horizon: int, lookback: int, n_series: int
) -> nn.Module:
    """The registry model of ``cfg``, wrapped in a :class:`SeriesEmbedding` when
    ``cfg.series_embedding`` (its input then has one more column: the series index)."""
    model = build_model(cfg, n_features, horizon, lookback)
    if not cfg.series_embedding:
        return model
    return SeriesEmbedding(model, n_series, n_features)


class SeriesEmbedding(nn.Module):
    """``inner`` behind a learned per-series vector added to every input step."""

    def __init__(self, inner: nn.Module, n_series: int, n_features: int):
        super().__init__()
        self.inner = inner
        self.n_series = int(n_series)
        # zero start: the pooled model begins as the model without embedding and learns
        # per-series offsets only where they lower the loss
        self.embed = nn.Embedding(self.n_series, n_features)
        nn.init.zeros_(self.embed.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, L, F + 1); the last column holds the series index, constant within a window
        ids = x[:, -1, -1].round().long()  # (B,)
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.n_series):
            raise ConfigError(
                f"series index {int(ids.max())} is outside the {self.n_series} series this model "
                "was trained on; a model with model.series_embedding forecasts only its pool"
            )
        feats = x[..., :-1] + self.embed(ids)[:, None, :].to(x.dtype)  # (B, L, F)
        return self.inner(feats)  # (B, H), or (B, H, Q) for a quantile model
