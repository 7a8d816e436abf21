"""Probabilistic random-walk baselines: what persistence is for points, these are for quantiles.

Both predict quantiles (B, H, Q) of the h-step log return, with the median at "no change" for
``rw_ewma`` (so their point forecast is persistence) and are fitted in closed form (registered
``trainable=False``), like darts' naive models share the neural models' contract:

- ``rw_empirical``: the empirical quantiles of the past h-step log returns
  ``log(close[t] / close[t-h])`` over the trailing ``model.rw_window`` candles up to the origin.
- ``rw_ewma``: a Gaussian random walk, ``r_{t+1..t+h} ~ N(0, h * sigma_t^2)``, with the RiskMetrics
  EWMA variance ``sigma_t^2 = lambda * sigma_{t-1}^2 + (1 - lambda) * r_t^2`` (J.P. Morgan 1996,
  lambda = ``model.ewma_lambda``, 0.94 for daily data), seeded with the mean squared return of
  the training rows.

``fit_series`` sees the fold's training closes only (``train.fit_naive_model`` slices them);
``predict_series`` reads closes up to each forecast origin and never past it (the same
information a neural model's input window has), so the quantiles update with every candle.
``forward`` returns the quantiles as of the end of training (a constant, like ``drift``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from cryptocast.models.distribution import DEFAULT_QUANTILES, check_levels
from cryptocast.models.registry import register


def _z(levels) -> np.ndarray:
    """Standard normal quantiles of ``levels`` (Q,)."""
    from scipy.stats import norm

    return norm.ppf(np.asarray(levels, dtype=np.float64))


def ewma_variance(returns: np.ndarray, lam: float, seed: float) -> np.ndarray:
    """RiskMetrics variance after each return: ``v_t = lam * v_{t-1} + (1 - lam) * r_t^2``.

    Args:
        returns: one-step log returns r_1..r_n (n,).
        lam: decay in (0, 1).
        seed: v_0, the variance before the first return.

    Returns:
        (n,) ``v_t``, the variance forecast for the next return made after seeing ``r_t``.
    """
    from scipy.signal import lfilter

    r2 = np.nan_to_num(np.asarray(returns, dtype=np.float64) ** 2)
    out, _ = lfilter([1.0 - lam], [1.0, -lam], r2, zi=[lam * seed])
    return out


class RandomWalkQuantiles(nn.Module):
    """Random walk in log price with EWMA-Gaussian or empirical quantiles of the h-step return."""

    def __init__(self, kind: str, horizon: int, levels, lam: float = 0.94, window: int = 250):
        super().__init__()
        if kind not in ("ewma", "empirical"):
            raise ValueError(f"kind must be 'ewma' or 'empirical', got {kind!r}")
        self.kind = kind
        self.horizon = horizon
        self.quantile_levels = tuple(check_levels(levels))
        self.lam = float(lam)
        self.window = int(window)
        self.register_buffer("seed_var", torch.zeros((), dtype=torch.float64))
        # quantiles (H, Q) of the log return as of the last training close (what forward returns)
        self.register_buffer(
            "value", torch.zeros(horizon, len(self.quantile_levels), dtype=torch.float64)
        )

    def fit_series(self, close_train: np.ndarray) -> None:
        """Fit on the training closes only: the EWMA seed variance and the end-of-training
        quantiles."""
        close = np.asarray(close_train, dtype=np.float64)
        r = np.diff(np.log(close))
        r = r[np.isfinite(r)]
        seed = float(np.mean(r**2)) if r.size else 0.0
        self.seed_var.fill_(seed)
        if close.size >= 2:
            last = self.predict_series(close, np.array([close.size - 1]))[0]
            self.value.copy_(torch.as_tensor(last))

    def predict_series(self, close: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Log-return quantiles (n, H, Q) at origins ``ends`` from closes up to each origin."""
        close = np.asarray(close, dtype=np.float64)
        ends = np.asarray(ends, dtype=np.int64)
        if ends.size == 0:
            return np.empty((0, self.horizon, len(self.quantile_levels)))
        past = np.log(close[: int(ends.max()) + 1])  # nothing after the last origin is read
        if self.kind == "ewma":
            var = ewma_variance(np.diff(past), self.lam, float(self.seed_var))  # var[t-1]: row t
            var = np.concatenate([[float(self.seed_var)], var])[ends]  # (n,)
            steps = np.arange(1, self.horizon + 1, dtype=np.float64)
            sd = np.sqrt(np.maximum(var, 0.0))[:, None] * np.sqrt(steps)[None, :]  # (n, H)
            return sd[:, :, None] * _z(self.quantile_levels)[None, None, :]  # (n, H, Q)
        return self._empirical(past, ends)

    def _empirical(self, logc: np.ndarray, ends: np.ndarray) -> np.ndarray:
        from numpy.lib.stride_tricks import sliding_window_view

        W, out = self.window, []
        for h in range(1, self.horizon + 1):
            rh = np.full(logc.size, np.nan)
            rh[h:] = logc[h:] - logc[:-h]  # rh[t] = log(c_t / c_{t-h}), known at t
            padded = np.concatenate([np.full(W - 1, np.nan), rh])
            win = sliding_window_view(padded, W)[ends]  # (n, W): rows e-W+1 .. e
            ok = np.isfinite(win).any(axis=1)
            q = np.zeros((len(ends), len(self.quantile_levels)))
            if ok.any():
                q[ok] = np.nanquantile(win[ok], self.quantile_levels, axis=1).T
            out.append(q)
        return np.stack(out, axis=1)  # (n, H, Q)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x (B, L, F) only sets batch size and device: (B, H, Q) float64, the end-of-training
        # quantiles (the walk-forward path uses predict_series, updated to each origin)
        return self.value.to(device=x.device).unsqueeze(0).repeat(x.shape[0], 1, 1)


def _levels(cfg) -> tuple[float, ...]:
    return tuple(cfg.quantiles) if cfg.quantiles is not None else DEFAULT_QUANTILES


@register("rw_ewma", trainable=False)
def build_rw_ewma(cfg, n_features: int, horizon: int, lookback: int) -> RandomWalkQuantiles:
    return RandomWalkQuantiles("ewma", horizon, _levels(cfg), lam=cfg.ewma_lambda)


@register("rw_empirical", trainable=False)
def build_rw_empirical(cfg, n_features: int, horizon: int, lookback: int) -> RandomWalkQuantiles:
    return RandomWalkQuantiles("empirical", horizon, _levels(cfg), window=cfg.rw_window)
