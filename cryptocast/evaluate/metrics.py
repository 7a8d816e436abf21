"""Point-forecast metrics on prices and log returns, always next to the persistence baseline.

Every function takes the arrays a backtest produces for one (symbol, timeframe, model):

- ``y_true``: realised prices, shape (n, H) (or (n,) for H = 1),
- ``y_pred``: predicted prices, same shape,
- ``last_close``: the close at the forecast origin, shape (n,).

Column ``h-1`` of ``y_true``/``y_pred`` is the price ``h`` candles after the origin. The headline
numbers are those of the LAST step (h = H): that is the forecast the model was asked for. The same
metrics for every step come back as lists under ``"per_step"``.

Persistence ("tomorrow = today") predicts ``last_close`` for every step, so ``skill_rmse`` and
``mase`` compare a model with persistence on exactly the same points.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from cryptocast.errors import ConfigError, DataError
from cryptocast.models.distribution import INTERVALS  # the central intervals scored


@dataclass(frozen=True)
class MetricInfo:
    """What a metric is and which direction is better (used to highlight the best model)."""

    name: str
    kind: str  # "point" | "probabilistic" | "significance" | "trading"
    higher_is_better: bool | None  # None: neither (coverage should be near nominal)
    description: str


def _info(name: str, kind: str, higher: bool, description: str) -> tuple[str, MetricInfo]:
    return name, MetricInfo(name, kind, higher, description)


#: Every metric a user can select (``backtest.metrics``), in display order.
METRICS: dict[str, MetricInfo] = dict(
    [
        _info("mse", "point", False, "mean squared error of the price"),
        _info("rmse", "point", False, "root mean squared error of the price"),
        _info("mae", "point", False, "mean absolute error of the price"),
        _info("mape", "point", False, "mean absolute percentage error of the price (%)"),
        _info("rmse_ret", "point", False, "RMSE of the log return log(y / last_close)"),
        _info("mae_ret", "point", False, "MAE of the log return log(y / last_close)"),
        _info("directional_accuracy", "point", True, "share of correctly called up/down moves"),
        _info("skill_rmse", "point", True, "1 - RMSE_model / RMSE_persistence"),
        _info("mase", "point", False, "MAE_model / MAE_persistence on the same points"),
        _info("dm_pvalue_vs_persistence", "significance", False, "DM p-value vs persistence"),
        _info(
            "dm_pvalue_vs_best",
            "significance",
            False,
            "DM p-value vs the best other neural model (named in dm_best_other)",
        ),
        # quantile forecasts (evaluate/probabilistic.py), on log returns, at step H
        _info("pinball", "probabilistic", False, "mean pinball loss over the quantile levels"),
        _info("crps", "probabilistic", False, "CRPS approximated from the quantiles"),
        _info("crps_skill", "probabilistic", True, "1 - CRPS_model / CRPS_rw_ewma"),
        *(
            _info(
                f"coverage_{c}",
                "probabilistic",
                None,
                f"share of outcomes inside the {c}% interval",
            )
            for c in INTERVALS
        ),
        *(
            _info(f"width_{c}", "probabilistic", False, f"mean width of the {c}% interval")
            for c in INTERVALS
        ),
        _info("interval_score_80", "probabilistic", False, "Winkler score, 80% interval"),
        _info("interval_score_90", "probabilistic", False, "Winkler score, 90% interval"),
        _info("interval_score_98", "probabilistic", False, "Winkler score, 98% interval"),
        _info("dm_pvalue_crps_vs_rw_ewma", "significance", False, "DM p-value, CRPS vs rw_ewma"),
        _info(
            "dm_pvalue_pinball_vs_rw_ewma", "significance", False, "DM p-value, pinball vs rw_ewma"
        ),
        _info("total_return", "trading", True, "strategy total return after costs"),
        _info("annual_return", "trading", True, "geometric annualised return"),
        _info("annual_vol", "trading", False, "annualised volatility of period returns"),
        _info("sharpe", "trading", True, "annualised Sharpe ratio (rf = 0)"),
        _info("max_drawdown", "trading", False, "largest peak-to-trough equity loss (fraction)"),
        _info("hit_rate", "trading", True, "share of in-market periods with a positive return"),
        # volatility targets (features.target=realized_vol; cryptocast.evaluate.volatility)
        _info("rmse_vol", "vol", False, "RMSE of annualised volatility"),
        _info("mae_vol", "vol", False, "MAE of annualised volatility"),
        _info("qlike", "vol", False, "QLIKE loss on variances (Patton 2011)"),
        _info("mz_r2", "vol", True, "Mincer-Zarnowitz R^2 of realised on forecast variance"),
        _info("bias_ratio", "vol", None, "mean realised / mean forecast variance (1: unbiased)"),
        _info("skill_qlike", "vol", True, "1 - QLIKE_model / QLIKE_har"),
        _info("skill_qlike_persistence", "vol", True, "1 - QLIKE_model / QLIKE_vol_persistence"),
        _info("dm_pvalue_vs_har", "significance", False, "DM p-value on QLIKE vs har"),
        _info(
            "dm_pvalue_vs_vol_persistence",
            "significance",
            False,
            "DM p-value on QLIKE vs vol_persistence",
        ),  # fmt: skip
        # the series' volatility models together (evaluate/vol_confidence.py), on QLIKE
        _info("mcs_qlike_90", "significance", None, "in the 90% Model Confidence Set on QLIKE"),
        _info("mcs_pvalue_qlike", "significance", None, "MCS p-value on QLIKE"),
        _info("spa_p_vs_har", "significance", False, "SPA p-value on QLIKE vs har"),
        _info("vt_annual_vol", "vol", None, "vol-targeted buy-and-hold: realised annual vol"),
        _info("vt_vol_error", "vol_use", False, "RMSE of its 30-day realised vol around target"),
        _info("vt_sharpe", "vol_use", True, "vol-targeted buy-and-hold: annualised Sharpe"),
    ]
)

POINT_METRICS = [m for m, info in METRICS.items() if info.kind == "point"]


def select_metrics(names: Iterable[str] | None) -> list[str]:
    """Validate a user's metric filter; ``None`` means all, in registry order.

    Raises:
        ConfigError: a name is not in ``METRICS`` (the message lists the valid names).
    """
    if names is None:
        return list(METRICS)
    names = list(names)
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ConfigError(
            f"unknown metric {', '.join(map(repr, unknown))}; valid metrics: {', '.join(METRICS)}"
        )
    if not names:
        raise ConfigError(f"backtest.metrics is empty; pick from: {', '.join(METRICS)}")
    return names


def as_2d(y_true, y_pred, last_close) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coerce to float arrays (n, H), (n, H), (n,); raise DataError on a shape mismatch."""
    yt = np.asarray(y_true, dtype=np.float64)
    yp = np.asarray(y_pred, dtype=np.float64)
    lc = np.asarray(last_close, dtype=np.float64).reshape(-1)
    if yt.ndim == 1:
        yt = yt[:, None]
    if yp.ndim == 1:
        yp = yp[:, None]
    if yt.shape != yp.shape or yt.ndim != 2 or yt.shape[0] != lc.shape[0]:
        raise DataError(
            f"forecast arrays disagree: y_true {yt.shape}, y_pred {yp.shape}, "
            f"last_close {lc.shape}; expected (n, H), (n, H), (n,)"
        )
    return yt, yp, lc


def _step_metrics(yt: np.ndarray, yp: np.ndarray, lc: np.ndarray) -> dict[str, float]:
    """All point metrics for one horizon step; inputs (n,) with non-finite rows already dropped."""
    nan = float("nan")
    n = yt.shape[0]
    if n == 0:
        return {m: nan for m in POINT_METRICS} | {"n": 0, "n_ties": 0}
    err = yt - yp
    err_p = yt - lc  # persistence error
    mse = float(np.mean(err**2))
    rmse = float(np.sqrt(mse))
    mae = float(np.mean(np.abs(err)))
    rmse_p = float(np.sqrt(np.mean(err_p**2)))
    mae_p = float(np.mean(np.abs(err_p)))
    with np.errstate(divide="ignore", invalid="ignore"):
        mape = float(np.mean(np.abs(err) / np.abs(yt)) * 100.0)
        # Returns relative to the origin close; a non-positive price has no log return (NaN).
        ret_err = np.log(yt / lc) - np.log(yp / lc)
    rmse_ret = float(np.sqrt(np.mean(ret_err**2)))
    mae_ret = float(np.mean(np.abs(ret_err)))

    real_move = np.sign(yt - lc)
    pred_move = np.sign(yp - lc)
    called = real_move != 0  # a flat realised move has no direction: excluded and counted
    n_ties = int(n - called.sum())
    if called.sum() == 0 or not np.any(pred_move != 0):
        # Persistence never calls a direction; a 0 would read as "always wrong", so NaN.
        da = nan
    else:
        # A zero predicted move on a realised up/down move counts as a miss.
        da = float(np.mean(pred_move[called] == real_move[called]))
    return {
        "mse": mse,
        "rmse": rmse,
        "mae": mae,
        "mape": mape,
        "rmse_ret": rmse_ret,
        "mae_ret": mae_ret,
        "directional_accuracy": da,
        "skill_rmse": 1.0 - rmse / rmse_p if rmse_p > 0 else nan,
        "mase": mae / mae_p if mae_p > 0 else nan,
        "n": int(n),
        "n_ties": n_ties,
    }


def point_metrics(y_true, y_pred, last_close, metrics: Iterable[str] | None = None) -> dict:
    """Price and return metrics of one model's forecasts, headline at the last step h = H.

    Rows where ``y_true`` or ``y_pred`` of a step is not finite (e.g. targets beyond the stored data)
    are dropped for that step only.

    Definitions (``e = y_true - y_pred``, persistence forecast = ``last_close``):

    - ``mse``, ``rmse``, ``mae``: on price; ``mape``: ``mean(|e| / |y_true|) * 100``.
    - ``rmse_ret``, ``mae_ret``: on log returns ``log(y / last_close)``.
    - ``directional_accuracy``: ``sign(y_pred - last_close) == sign(y_true - last_close)`` over
      points with a non-zero realised move (zero moves are excluded and reported as ``n_ties``);
      a zero predicted move counts as a miss; NaN if the model never predicts a move.
    - ``skill_rmse``: ``1 - RMSE_model / RMSE_persistence``; 0 for persistence, > 0 beats it.
    - ``mase``: ``MAE_model / MAE_persistence`` on the same out-of-sample points. This is the
      out-of-sample relative MAE, not Hyndman's in-sample-scaled MASE: the scale is the error of the
      naive forecast at the same horizon on the same test points, so 1 means "as good as
      persistence" whatever the horizon and no training data is needed.

    Args:
        y_true: realised prices (n, H) or (n,).
        y_pred: predicted prices, same shape.
        last_close: close at each forecast origin (n,).
        metrics: names to keep (see ``METRICS``; non-point names are ignored here); None = all.

    Returns:
        ``{metric: float, "n": int, "n_ties": int, "horizon": H,
        "per_step": {metric: [float] * H, "n": [int] * H}}``.
    """
    keep = [m for m in select_metrics(metrics) if m in POINT_METRICS]
    yt, yp, lc = as_2d(y_true, y_pred, last_close)
    horizon = yt.shape[1]
    steps = []
    for h in range(horizon):
        ok = np.isfinite(yt[:, h]) & np.isfinite(yp[:, h]) & np.isfinite(lc)
        steps.append(_step_metrics(yt[ok, h], yp[ok, h], lc[ok]))
    last = steps[-1]
    out: dict = {m: last[m] for m in keep}
    out["n"] = last["n"]
    out["n_ties"] = last["n_ties"]
    out["horizon"] = horizon
    out["per_step"] = {m: [s[m] for s in steps] for m in [*keep, "n"]}
    return out


def fold_rmse(y_true, y_pred, last_close, folds, step: int | None = None) -> dict[int, float]:
    """RMSE of step ``step`` (1-based; default H) per fold id, for the error-per-fold plot."""
    yt, yp, lc = as_2d(y_true, y_pred, last_close)
    col = (step or yt.shape[1]) - 1
    folds = np.asarray(folds).reshape(-1)
    out: dict[int, float] = {}
    for f in np.unique(folds):
        sel = (folds == f) & np.isfinite(yt[:, col]) & np.isfinite(yp[:, col])
        e = yt[sel, col] - yp[sel, col]
        out[int(f)] = float(np.sqrt(np.mean(e**2))) if e.size else float("nan")
    return out
