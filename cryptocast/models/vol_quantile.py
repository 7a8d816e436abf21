"""Volatility-driven quantile models: return quantiles = a volatility forecast x a residual shape.

The h-step log-return quantile at level tau made at origin t is ``sqrt(V_t(h)) * z_tau``, where
``V_t(h) = sum_{k<=h} sigma^2_{t+k|t}`` is the forecast variance of the next h one-step returns
and ``z_tau`` the tau-quantile of the standardized one-step residuals ``z_s = r_s / sigma_{s|s-1}``.
Exact for h = 1 (the default horizon); for h > 1 it keeps the one-step shape (square-root-of-time
scaling of the cumulative variance), which overstates the tails a little since sums of returns are
closer to normal. Same contract as the random walks (``models/random_walk.py``): fitted in closed
form (``trainable=False``) by ``fit_series`` on the fold's training closes only, predicted by
``predict_series`` from closes up to each origin and never past it; the volatility updates with
every candle, the residual shape is fixed at the fit.

Volatility (of one-step log returns of the series' own candles, so hourly series get an hourly
model):

- ``ewma``: RiskMetrics (J.P. Morgan 1996), ``lambda = model.ewma_lambda``, flat over the horizon,
  seeded with the training rows' mean squared return (``random_walk.ewma_variance``);
- ``garch``: zero-mean GARCH(1,1) fitted by ``arch`` on the training returns
  (``volatility.fit_garch``), filtered from the training variance, mean-reverting over the horizon;
- ``har``: Corsi's (2009) HAR on squared returns, ``r^2_{t+k} = b0 + b1 r^2_t + b2 mean_7(r^2) +
  b3 mean_30(r^2)`` by OLS per step k on the training rows (``volatility.har_ols``), floored at
  1% of the training variance (OLS in levels can go negative); windows are in candles.

Shape:

- ``fhs``: filtered historical simulation (Barone-Adesi, Giannopoulos & Vosper 1999): empirical
  quantiles of the training rows' standardized residuals;
- ``t``: a Student-t (df, location, scale) fitted by maximum likelihood to those residuals;
- ``arch``: GARCH's own innovation distribution, estimated jointly with it by ``arch``
  (standardized Student-t, ``dist="t"``, or Hansen's 1994 skewed t, ``dist="skewt"``).

Registered names: ``fhs_ewma``, ``fhs_garch``, ``fhs_har``, ``t_ewma``, ``garch_t``,
``garch_skewt`` (docs/quantiles.md).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from cryptocast.errors import DataError
from cryptocast.models.distribution import DEFAULT_QUANTILES, check_levels
from cryptocast.models.random_walk import ewma_variance
from cryptocast.models.registry import register
from cryptocast.models.volatility import fit_garch, har_ols

HAR_WINDOWS = (7, 30)  # candles behind the "weekly" and "monthly" HAR components
BURN_IN = 30  # first training returns left out of the residuals (HAR windows still filling)
MIN_RETURNS = 60  # fewest training returns the fit accepts
VAR_FLOOR = 0.01  # HAR variance floor, as a share of the training variance


def _returns(logc: np.ndarray) -> np.ndarray:
    """Row t's one-step log return ``log c_t - log c_{t-1}`` (m,); NaN at row 0."""
    return np.concatenate([[np.nan], np.diff(logc)])


def _window_means(r2: np.ndarray, w: int) -> np.ndarray:
    """Mean of the squared returns of rows max(1, t-w+1)..t at each row t (NaN at row 0)."""
    cs = np.concatenate([[0.0], np.cumsum(np.nan_to_num(r2))])  # cs[i] = sum of rows < i
    t = np.arange(r2.size)
    lo = np.maximum(t - w + 1, 1)
    count = t - lo + 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, (cs[t + 1] - cs[lo]) / count, np.nan)


class VolQuantiles(nn.Module):
    """Quantiles (B, H, Q) of the h-step log return from a volatility path and a residual shape."""

    def __init__(
        self, vol: str, shape: str, horizon: int, levels, lam: float = 0.94, dist: str = "normal"
    ):
        super().__init__()
        if vol not in ("ewma", "garch", "har") or shape not in ("fhs", "t", "arch"):
            raise ValueError(f"unknown volatility {vol!r} or shape {shape!r}")
        if shape == "arch" and (vol != "garch" or dist == "normal"):
            raise ValueError("shape 'arch' is GARCH's own t or skew-t innovation distribution")
        self.vol, self.shape, self.dist = vol, shape, dist
        self.horizon = horizon
        self.quantile_levels = tuple(check_levels(levels))
        self.lam = float(lam)
        f64, Q = torch.float64, len(self.quantile_levels)
        # everything predict_series needs, as buffers so a checkpoint restores the fit
        self.register_buffer("seed_var", torch.zeros((), dtype=f64))  # sigma^2 before row 1
        self.register_buffer("garch", torch.tensor([0.0, 0.0, 0.0], dtype=f64))  # omega, a, b
        self.register_buffer("har_coef", torch.zeros(4, horizon, dtype=f64))  # (1 + 3, H)
        self.register_buffer("z_levels", torch.zeros(Q, dtype=f64))  # standardized quantiles
        self.register_buffer("value", torch.zeros(horizon, Q, dtype=f64))  # at the last close

    # --- the fit: training closes only ---------------------------------------------------------
    def fit_series(self, close_train: np.ndarray) -> None:
        """Fit the volatility model and the residual shape on the training closes only."""
        close = np.asarray(close_train, dtype=np.float64)
        r = _returns(np.log(close))
        ok = np.isfinite(r)
        if ok.sum() < MIN_RETURNS:
            raise DataError(
                f"{self.vol} volatility quantiles need at least {MIN_RETURNS} training returns, "
                f"got {int(ok.sum())}; start backtest.test_start later"
            )
        self.seed_var.fill_(float(np.mean(r[ok] ** 2)))
        shape_params: tuple[float, ...] = ()
        if self.vol == "garch":
            omega, alpha, beta, *shape_params = fit_garch(r[ok] * 100.0, self.dist)
            self.garch.copy_(torch.tensor([omega / 1e4, alpha, beta], dtype=torch.float64))
        elif self.vol == "har":
            self.har_coef.copy_(torch.as_tensor(self._fit_har(r)))
        s2 = self._one_step_var(r)  # s2[t]: variance of row t+1's return, known at row t
        z = r[1:] / np.sqrt(s2[:-1])  # row t's return over its forecast sd made at row t-1
        z = z[min(BURN_IN, z.size // 4) :]
        z = z[np.isfinite(z)]
        self.z_levels.copy_(torch.as_tensor(self._shape_quantiles(z, shape_params)))
        self.value.copy_(torch.as_tensor(self.predict_series(close, np.array([close.size - 1]))[0]))

    def _fit_har(self, r: np.ndarray) -> np.ndarray:
        r2 = r**2
        Z = self._har_regressors(r2)  # (m, 3) at each row
        m, H = r2.size, self.horizon
        y = np.full((m, H), np.nan)
        for k in range(1, H + 1):
            y[: m - k, k - 1] = r2[k:]  # row t's target for step k: r^2 of row t + k
        rows = np.arange(max(HAR_WINDOWS), m)  # full windows only
        return har_ols(Z[rows], y[rows])

    @staticmethod
    def _har_regressors(r2: np.ndarray) -> np.ndarray:
        return np.column_stack([r2, *(_window_means(r2, w) for w in HAR_WINDOWS)])

    def _shape_quantiles(self, z: np.ndarray, shape_params: tuple[float, ...]) -> np.ndarray:
        levels = np.asarray(self.quantile_levels)
        if self.shape == "fhs":
            return np.quantile(z, levels)
        if self.shape == "t":
            from scipy.stats import t

            df, loc, scale = t.fit(z)
            return t.ppf(levels, df, loc, scale)
        from arch.univariate import SkewStudent, StudentsT

        dist = StudentsT() if self.dist == "t" else SkewStudent()
        return np.asarray(dist.ppf(levels, np.asarray(shape_params)), dtype=np.float64)

    # --- the volatility path: closes up to each origin -----------------------------------------
    def _one_step_var(self, r: np.ndarray) -> np.ndarray:
        """``s2[t]`` (m,): the variance of row t+1's return forecast at row t from returns <= t."""
        seed = float(self.seed_var)
        if self.vol == "har":
            return self._har_path(r)[:, 0]
        if self.vol == "ewma":  # the same path as rw_ewma's
            out = ewma_variance(r[1:], self.lam, seed)
        else:
            from scipy.signal import lfilter

            omega, alpha, beta = (float(v) for v in self.garch)
            # s2[t] = omega + alpha r_t^2 + beta s2[t-1] for t >= 1, s2[0] = seed
            x = omega + alpha * np.nan_to_num(r[1:] ** 2)  # a missing return adds nothing
            out, _ = lfilter([1.0], [1.0, -beta], x, zi=[beta * seed])
        return np.concatenate([[seed], out])

    def _har_path(self, r: np.ndarray) -> np.ndarray:
        """(m, H) HAR variance of the return k steps after each row."""
        Z = self._har_regressors(np.where(np.isfinite(r), r**2, np.nan))
        coef = self.har_coef.numpy()
        v = coef[0] + np.nan_to_num(Z, nan=float(self.seed_var)) @ coef[1:]
        return np.maximum(v, VAR_FLOOR * float(self.seed_var))

    def _variance_paths(self, r: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """(n, H) variance of each of the next H one-step returns at origins ``ends``."""
        H = self.horizon
        if self.vol == "har":
            return self._har_path(r)[ends]
        s2 = self._one_step_var(r)[ends][:, None]  # (n, 1)
        if self.vol == "ewma":
            return np.repeat(s2, H, axis=1)
        omega, alpha, beta = (float(v) for v in self.garch)
        p, k = alpha + beta, np.arange(H, dtype=np.float64)[None, :]  # k = steps - 1
        if p < 1:  # mean reversion to omega / (1 - p) (Bollerslev 1986)
            unc = omega / (1.0 - p)
            return unc + p**k * (s2 - unc)
        return s2 + k * omega

    def predict_series(self, close: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Log-return quantiles (n, H, Q) at origins ``ends`` from closes up to each origin."""
        ends = np.asarray(ends, dtype=np.int64)
        if ends.size == 0:
            return np.empty((0, self.horizon, len(self.quantile_levels)))
        past = np.log(np.asarray(close, dtype=np.float64)[: int(ends.max()) + 1])  # no future
        cum = np.cumsum(self._variance_paths(_returns(past), ends), axis=1)  # (n, H)
        return np.sqrt(cum)[:, :, None] * self.z_levels.numpy()[None, None, :]  # (n, H, Q)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x (B, L, F) only sets batch size and device: the end-of-training quantiles (B, H, Q)
        return self.value.to(device=x.device).unsqueeze(0).repeat(x.shape[0], 1, 1)


#: registry name -> (volatility, shape, arch innovation distribution)
VARIANTS = {
    "fhs_ewma": ("ewma", "fhs", "normal"),
    "fhs_garch": ("garch", "fhs", "normal"),
    "fhs_har": ("har", "fhs", "normal"),
    "t_ewma": ("ewma", "t", "normal"),
    "garch_t": ("garch", "arch", "t"),
    "garch_skewt": ("garch", "arch", "skewt"),
}


def _register_variants() -> None:
    for name, (vol, shape, dist) in VARIANTS.items():
        # the builder contract of models/registry.py: (model config, n_features, horizon, lookback)
        def build(cfg, n_features, horizon, lookback, vol=vol, shape=shape, dist=dist):
            levels = tuple(cfg.quantiles) if cfg.quantiles is not None else DEFAULT_QUANTILES
            return VolQuantiles(vol, shape, horizon, levels, lam=cfg.ewma_lambda, dist=dist)

        register(name, trainable=False)(build)


_register_variants()
