"""Naive baselines with the same (B, L, F) -> (B, H) interface as the neural models.

Both are fitted in closed form with ``fit_naive`` (no gradient steps; registered
``trainable=False``), as darts' baselines share the fit/predict contract of its neural models.
- ``persistence``: the "no change" forecast (the last close carried forward), i.e. the identity
  target in scaled space (log return 0 or price ratio 1, through the target scaler).
- ``drift``: a random walk with drift; the drift is the mean training target per horizon step.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from cryptocast.models.registry import register


class NaiveForecaster(nn.Module):
    """Predicts a fitted constant vector ``value`` (H,) for every window."""

    def __init__(self, kind: str, horizon: int) -> None:
        super().__init__()
        if kind not in ("persistence", "drift"):
            raise ValueError(f"kind must be 'persistence' or 'drift', got {kind!r}")
        self.kind = kind
        self.horizon = horizon
        # float64 so that persistence maps back to exactly the last close (a float32 round trip
        # through the target scaler leaves ~1e-8 noise, which flips signs in the trading test)
        self.register_buffer("value", torch.zeros(horizon, dtype=torch.float64))

    def fit_naive(self, y_train_scaled: np.ndarray, identity_scaled: np.ndarray) -> None:
        """Set ``value`` from the scaled training targets (n, H) and the scaled identity (H,)."""
        identity = np.asarray(identity_scaled, dtype=np.float64).reshape(self.horizon)
        if self.kind == "persistence":
            value = identity
        else:
            y = np.asarray(y_train_scaled, dtype=np.float64).reshape(-1, self.horizon)
            finite = np.isfinite(y)
            counts = finite.sum(axis=0)
            sums = np.where(finite, y, 0.0).sum(axis=0)
            # No finite target for a step (tiny training set): fall back to "no change".
            value = np.where(counts > 0, sums / np.maximum(counts, 1), identity)
        self.value.copy_(torch.as_tensor(value, dtype=self.value.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x (B, L, F) only sets batch size and device; output (B, H) float64, a fresh tensor.
        return self.value.to(device=x.device).unsqueeze(0).repeat(x.shape[0], 1)


@register("persistence", trainable=False)
def build_persistence(cfg, n_features: int, horizon: int, lookback: int) -> NaiveForecaster:
    return NaiveForecaster("persistence", horizon)


@register("drift", trainable=False)
def build_drift(cfg, n_features: int, horizon: int, lookback: int) -> NaiveForecaster:
    return NaiveForecaster("drift", horizon)
