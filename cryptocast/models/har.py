"""The HAR family beyond Corsi's ``har``: log-RV regressions on the realized measures.

Each is ``log RV(t+h) = b0 + b' x_t`` by OLS per step h (direct forecasts), refit per fold on the
fold's training and validation windows (every one before its first origin), or on the last
``model.har_window`` of them (a rolling window; Audrino & Chassot find the window matters as much
as the model). Like ``har`` they are models of log RV, so the target maps them back with the
bias correction of ``features/targets.py`` (``forecasts_variance`` stays False). ``x_t`` reads the
origin row's ``features/volatility.py`` columns (``_d`` the day, ``_w``/``_m`` 7-/30-day means):

- ``harq`` (Bollerslev, Patton & Quaedvlieg 2016): the daily coefficient varies with the
  measurement error, ``(b1 + b1q q_t) log RV_d + b2 log RV_w + b3 log RV_m``, ``q_t = sqrt(RQ_t) /
  RV_t`` (``rq_rel_d``; the paper's ``sqrt(RQ)`` made scale free for a log model, as the error of
  log RV is relative). More noise (large ``q``) -> less weight on yesterday.
- ``har_semi`` (Patton & Sheppard 2015): the daily term split into the semivariances,
  ``b+ log RS+_d + b- log RS-_d + b2 log RV_w + b3 log RV_m`` (``0.5 log`` of each: vol units).
- ``har_cj`` (Andersen, Bollerslev & Diebold 2007): continuous and jump components,
  ``log C_d, log C_w, log C_m`` and ``J_d, J_w, J_m`` with ``C = min(RV, BV)``, ``J = max(RV - BV,
  0)`` (as volatilities; J enters in levels, it is 0 on most days).
- ``har_x``: ``har`` plus another symbol's HAR components ``x_log_rv_d/w/m`` (``features.rv_cross``:
  e.g. BTC for ETH and LTC), measured from its candles of the same UTC day (causal).

With ``features.rv_source: 1h`` the measures come from 24 hourly returns a day: every model still
runs, on noisier RQ, BV and semivariances (docs/volatility.md).
"""

from __future__ import annotations

import numpy as np
import torch

from cryptocast.errors import ConfigError
from cryptocast.models.registry import register
from cryptocast.models.volatility import Har


def _cat(cols: list):
    """Stack (n,) columns into (n, k), numpy or torch alike."""
    if isinstance(cols[0], torch.Tensor):
        return torch.stack(cols, dim=1)
    return np.column_stack(cols)


class HarQ(Har):
    features = ("log_rv_d", "rq_rel_d", "log_rv_w", "log_rv_m")
    n_regressors = 4

    def regressors(self, z):
        return _cat([z[:, 0], z[:, 1] * z[:, 0], z[:, 2], z[:, 3]])


class HarSemi(Har):
    features = ("log_rs_pos_d", "log_rs_neg_d", "log_rv_w", "log_rv_m")
    n_regressors = 4


class HarCJ(Har):
    features = ("log_cv_d", "log_cv_w", "log_cv_m", "jv_d", "jv_w", "jv_m")
    n_regressors = 6


class HarX(Har):
    features = ("log_rv_d", "log_rv_w", "log_rv_m", "x_log_rv_d", "x_log_rv_w", "x_log_rv_m")
    n_regressors = 6

    def fit_prepared(self, data) -> None:
        if data.target == "realized_vol" and "x_log_rv_d" not in data.feature_names:
            raise ConfigError(
                "har_x reads another symbol's realized volatility: set features.rv_cross "
                "(e.g. BTC/USDT, or auto)"
            )
        super().fit_prepared(data)


HAR_FAMILY = {"harq": HarQ, "har_semi": HarSemi, "har_cj": HarCJ, "har_x": HarX}


def _register() -> None:
    for name, cls in HAR_FAMILY.items():
        # the builder contract of models/registry.py: (model config, n_features, horizon, lookback)
        register(name, trainable=False)(
            lambda cfg, n_features, horizon, lookback, cls=cls: cls(horizon, cfg.har_window)
        )


_register()
