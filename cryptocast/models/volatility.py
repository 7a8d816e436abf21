"""Volatility baselines on the neural contract: (B, L, F) scaled features -> (B, H) scaled log RV.

Fitted in closed form by ``fit_prepared(data)`` (registered ``trainable=False``; the training loop
calls it instead of gradient descent) from the fold's training and validation windows only, then
predicted through the same ``Predictor`` path as every model. They read the ``features/volatility.py``
columns of the LAST input row (the origin), unscaled with the fold's statistics, which live in
buffers so a checkpoint restores them.

``har`` is a model of log RV: the target maps its forecasts back with the bias correction of
``features/targets.py``. The other three forecast the variance itself (``forecasts_variance``: a
realised variance, the RiskMetrics and the GARCH conditional variance, carried in log vol units
only to share the contract) and are mapped back unchanged.

- ``vol_persistence``: tomorrow's RV = today's (``log_rv_d``), every step.
- ``har``: Corsi (2009) HAR-RV in logs, ``log RV(t+h) = b0 + b1 log RV_d + b2 log RV_w +
  b3 log RV_m`` by OLS per step h (direct forecasts), refit per fold on its training and
  validation windows (all before the fold's first origin), or on the last ``model.har_window``
  of them. Its relatives (``harq``, ``har_semi``, ``har_cj``, ``har_x``) are in ``har.py``.
- ``ewma_vol``: RiskMetrics (J.P. Morgan 1996), ``lambda = 0.94`` on daily log returns
  (``log_ewma_vol``), the same value every step.
- ``garch``: GARCH(1,1) with zero mean on daily log returns in percent, fitted by the ``arch``
  package (Sheppard) on the fold's training rows. The conditional variance is filtered through the
  L returns of the window, started from the RiskMetrics variance at the window's first row
  (``beta^L`` of that start survives: ~0.04 for beta 0.9, L 30), then projected h steps ahead.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from cryptocast.errors import ConfigError, DataError
from cryptocast.models.registry import register


class VolBaseline(nn.Module):
    """Shared plumbing: the feature columns it reads and the fold's scaler statistics."""

    features: tuple[str, ...] = ()
    forecasts_variance = False  # True: exp of the output is already a variance forecast

    def __init__(self, horizon: int) -> None:
        super().__init__()
        self.horizon = horizon
        k = len(self.features)
        f64 = torch.float64
        self.register_buffer("idx", torch.zeros(k, dtype=torch.long))
        self.register_buffer("x_center", torch.zeros(k, dtype=f64))
        self.register_buffer("x_scale", torch.ones(k, dtype=f64))
        self.register_buffer("y_center", torch.zeros(horizon, dtype=f64))
        self.register_buffer("y_scale", torch.ones(horizon, dtype=f64))

    def fit_prepared(self, data) -> None:
        """Fit from a ``windows.PreparedData`` (its train and val windows only)."""
        self.adopt_scalers(data)
        self._fit(data)

    def for_series(self, data) -> VolBaseline:
        """A copy of this fitted model that reads ``data``'s scaled rows (that series' scaler
        statistics in its buffers): how a pooled model forecasts each series of its pool."""
        twin = copy.deepcopy(self)
        twin.adopt_scalers(data)
        return twin

    def adopt_scalers(self, data) -> None:
        """Read ``data``'s feature columns and scaler statistics into the buffers."""
        if data.target != "realized_vol":
            raise ConfigError(
                f"{type(self).__name__} forecasts volatility; set features.target=realized_vol"
            )
        names = list(data.feature_names)
        missing = [f for f in self.features if f not in names]
        if missing:
            raise DataError(f"feature table lacks {missing[0]}; rebuild features")
        idx = [names.index(f) for f in self.features]
        self.idx.copy_(torch.as_tensor(idx))
        self.x_center.copy_(torch.as_tensor(data.x_scaler.center[idx]))
        self.x_scale.copy_(torch.as_tensor(data.x_scaler.scale[idx]))
        self.y_center.copy_(torch.as_tensor(data.y_scaler.center))
        self.y_scale.copy_(torch.as_tensor(data.y_scaler.scale))

    def _fit(self, data) -> None:  # closed-form estimation, if any
        pass

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, F) scaled -> (B, L, k) unscaled float64 values of ``features``."""
        return x[..., self.idx].double() * self.x_scale + self.x_center

    def scaled(self, log_vol: torch.Tensor) -> torch.Tensor:
        """(B, H) log daily volatility -> (B, H) in the scaled target space."""
        return (log_vol - self.y_center) / self.y_scale

    def unscaled_rows(self, data, rows: np.ndarray) -> np.ndarray:
        """(n, k) unscaled feature values at ``rows`` of the prepared table."""
        idx = self.idx.numpy()
        return data.X[rows][:, idx].astype("float64") * self.x_scale.numpy() + self.x_center.numpy()


def fit_rows(data) -> np.ndarray:
    """Window origins a baseline may fit on: the fold's training and validation windows."""
    ends = [data.ends[s] for s in ("train", "val") if s in data.ends]
    return np.sort(np.concatenate(ends)).astype("int64")


class VolPersistence(VolBaseline):
    features = ("log_rv_d",)
    forecasts_variance = True  # today's realised variance, a martingale forecast of tomorrow's

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.raw(x)[:, -1, 0]  # (B,)
        return self.scaled(z[:, None].expand(-1, self.horizon))  # (B, H)


class EwmaVol(VolBaseline):
    features = ("log_ewma_vol",)
    forecasts_variance = True  # the RiskMetrics conditional variance

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.raw(x)[:, -1, 0]  # (B,)
        return self.scaled(z[:, None].expand(-1, self.horizon))  # (B, H)


class Har(VolBaseline):
    """Linear in ``regressors(features)`` by OLS per step; ``window``: the last N fit origins only
    (``model.har_window``; None: all). The HAR family of ``models/har.py`` changes the features
    and the regressors built from them."""

    features = ("log_rv_d", "log_rv_w", "log_rv_m")
    n_regressors = 3

    def __init__(self, horizon: int, window: int | None = None) -> None:
        super().__init__(horizon)
        self.window = window
        p = 1 + self.n_regressors
        self.register_buffer("coef", torch.zeros(p, horizon, dtype=torch.float64))  # (1+p, H)

    def regressors(self, z):
        """(n, k) unscaled features (numpy or torch) -> (n, n_regressors) regressors."""
        return z

    def fit_origins(self, data) -> np.ndarray:
        """The origins the OLS uses: the fold's fit rows, the last ``window`` of them if set."""
        rows = fit_rows(data)
        return rows if self.window is None else rows[-self.window :]

    def _fit(self, data) -> None:
        rows = self.fit_origins(data)
        Z = self.regressors(self.unscaled_rows(data, rows))  # (n, p)
        y = data.y_scaler.inverse_transform(data.Y[rows].astype("float64"))  # (n, H) log RV
        coef = har_ols(Z, y)
        self.coef.copy_(torch.as_tensor(coef))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.regressors(self.raw(x)[:, -1, :])  # (B, p)
        return self.scaled(self.coef[0] + z @ self.coef[1:])  # (B, H)


def har_ols(Z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """OLS of each column of ``y`` (n, H) on ``[1, Z]`` (n, k): coefficients (1 + k, H)."""
    ok = np.isfinite(Z).all(axis=1) & np.isfinite(y).all(axis=1)
    if ok.sum() < Z.shape[1] + 2:
        raise DataError(f"HAR needs at least {Z.shape[1] + 2} training days, got {ok.sum()}")
    A = np.column_stack([np.ones(ok.sum()), Z[ok]])
    # normal equations via QR (numerically what lstsq does, without an rcond choice)
    q, r = np.linalg.qr(A)
    return np.linalg.solve(r, q.T @ y[ok])


def fit_garch(returns_pct: np.ndarray, dist: str = "normal") -> tuple[float, ...]:
    """(omega, alpha, beta, *shape) of a zero-mean GARCH(1,1) fitted by ``arch`` to returns in
    percent, by (quasi) maximum likelihood with innovations ``dist``: "normal" (no shape
    parameters), "t" (``nu``) or "skewt" (Hansen's skewed t: ``eta``, ``lambda``)."""
    try:
        from arch import arch_model
    except ImportError:
        raise ConfigError(
            "the garch baseline needs the arch package: pip install 'cryptocast[vol]'"
        ) from None
    model = arch_model(returns_pct, mean="Zero", vol="GARCH", p=1, q=1, dist=dist, rescale=False)
    res = model.fit(disp="off", show_warning=False)
    shape = {"normal": (), "t": ("nu",), "skewt": ("eta", "lambda")}[dist]
    params = tuple(float(res.params[k]) for k in ("omega", "alpha[1]", "beta[1]", *shape))
    if not all(np.isfinite(params)):
        raise DataError("GARCH(1,1) fit did not converge to finite parameters")
    return params


class Garch(VolBaseline):
    features = ("ret_1d", "log_ewma_vol")
    forecasts_variance = True  # the GARCH(1,1) conditional variance, projected h steps

    def __init__(self, horizon: int) -> None:
        super().__init__(horizon)
        # omega, alpha, beta: typical daily values until fit (an unfitted model stays finite)
        self.register_buffer("params", torch.tensor([0.05, 0.1, 0.85], dtype=torch.float64))

    def _fit(self, data) -> None:
        segs = [data.segments[s] for s in ("train", "val") if s in data.segments]
        lo, hi = min(s[0] for s in segs), max(s[1] for s in segs)
        r = self.unscaled_rows(data, np.arange(lo, hi))[:, 0]
        r = r[np.isfinite(r)]
        if r.size < 30:
            raise DataError(f"GARCH needs at least 30 training days, got {r.size}")
        self.params.copy_(torch.as_tensor(fit_garch(r * 100.0)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        omega, alpha, beta = self.params
        z = self.raw(x)  # (B, L, 2)
        r = z[..., 0] * 100.0  # (B, L) percent returns
        s2 = torch.exp(2.0 * z[:, 0, 1]) * 1e4  # (B,) RiskMetrics variance for row 1, percent^2
        for t in range(1, x.shape[1]):
            s2 = omega + alpha * r[:, t] ** 2 + beta * s2  # variance for row t + 1
        p = alpha + beta
        steps = torch.arange(self.horizon, dtype=torch.float64, device=x.device)  # h - 1
        if p < 1:
            unc = omega / (1 - p)
            var = unc + p**steps * (s2[:, None] - unc)  # (B, H)
        else:
            var = s2[:, None] + steps * omega
        return self.scaled(0.5 * torch.log(var / 1e4))  # (B, H)


def _register_baselines() -> None:
    """The four baselines take only the horizon: (B, L, F) -> (B, H) log-RV forecasts."""
    register("har", trainable=False)(
        lambda cfg, n_features, horizon, lookback: Har(horizon, cfg.har_window)
    )
    for name, cls in (
        ("vol_persistence", VolPersistence),
        ("ewma_vol", EwmaVol),
        ("garch", Garch),
    ):
        # the builder contract of models/registry.py: (model config, n_features, horizon, lookback)
        register(name, trainable=False)(
            lambda cfg, n_features, horizon, lookback, cls=cls: cls(horizon)
        )


_register_baselines()
