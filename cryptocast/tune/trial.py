"""What one tuning trial scores: a walk-forward over the tuning period, which ends before the test.

The tuning period is the forecast origins ``[tune.start, tune.end)``; ``tune.end`` defaults to the
test start (``backtest.test_start``, or the ``test_fraction`` cut) and may not lie after it. The
driver cuts the feature table at ``tune.end`` and blanks every target that reaches past the cut
before a trial sees it (:func:`tuning_table`), so no trial can read a test-period candle, target
or close, whatever the trial does. A trial is then the backtest's own walk-forward
(``run_job``) over the tuning period, scored by a pluggable score after every fold; the running
score feeds the pruner, which may stop the walk early.

Scores are minimised: ``rmse`` (default), ``mae``, ``rmse_ratio`` (RMSE / persistence RMSE) and
``crps`` (quantile models), ``qlike`` (``features.target=realized_vol``; RMSE/MAE then score
volatilities). ``SCORES`` is the seam: :func:`register_score` adds another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cryptocast.config.schema import Config
from cryptocast.errors import ConfigError

# score(y_true (n, H), y_pred (n, H), last_close (n,), q (n, H, Q) | None, levels) -> float,
# lower is better; q and levels are the quantile forecasts of a quantile model (None otherwise)
Score = Callable[..., float]


def _rmse(yt: np.ndarray, yp: np.ndarray, lc: np.ndarray, *_: Any) -> float:
    ok = np.isfinite(yt).all(axis=1)
    return float(np.sqrt(np.mean((yt[ok] - yp[ok]) ** 2)))


def _mae(yt: np.ndarray, yp: np.ndarray, lc: np.ndarray, *_: Any) -> float:
    ok = np.isfinite(yt).all(axis=1)
    return float(np.mean(np.abs(yt[ok] - yp[ok])))


def _rmse_ratio(yt: np.ndarray, yp: np.ndarray, lc: np.ndarray, *_: Any) -> float:
    """RMSE relative to persistence (1 = as good as "no change"), comparable across coins."""
    ok = np.isfinite(yt).all(axis=1)
    rw = np.sqrt(np.mean((yt[ok] - lc[ok, None]) ** 2))
    return _rmse(yt[ok], yp[ok], lc[ok]) / rw if rw > 0 else float("nan")


def _crps(yt: np.ndarray, yp: np.ndarray, lc: np.ndarray, q: Any, levels: Any) -> float:
    """Mean CRPS (from the quantiles) of the last horizon step in log-return units: the
    backtest's own loss (``evaluate.probabilistic.per_origin_losses``), so a study's ``crps``
    and a report's CRPS are one number on one scale."""
    from cryptocast.evaluate.probabilistic import per_origin_losses

    if q is None:
        raise ConfigError(
            "tune.metric crps needs a quantile model: set model.quantiles and train.loss=pinball"
        )
    crps, _ = per_origin_losses(yt, q, lc, levels)
    return float(np.nanmean(crps))


def _qlike(yt: np.ndarray, yp: np.ndarray, *_: Any) -> float:
    """Mean QLIKE of the last step's volatilities (features.target=realized_vol)."""
    from cryptocast.evaluate.volatility import qlike_losses

    return float(np.nanmean(qlike_losses(yt[:, -1], yp[:, -1])))


SCORES: dict[str, Score] = {
    "rmse": _rmse,
    "mae": _mae,
    "rmse_ratio": _rmse_ratio,
    "crps": _crps,
    "qlike": _qlike,
}
# scores that only make sense for one kind of target (cryptocast.features.targets)
TARGET_KIND = {"rmse_ratio": "price", "crps": "price", "qlike": "vol"}


def register_score(name: str, fn: Score) -> None:
    """Make ``tune.metric: name`` available (lower must be better)."""
    SCORES[name] = fn


def get_score(name: str) -> Score:
    if name not in SCORES:
        raise ConfigError(f"tune.metric {name!r} is unknown; use one of {', '.join(SCORES)}")
    return SCORES[name]


@dataclass
class TuningPeriod:
    """The cut table a trial receives and the first origin of the tuning period."""

    table: pd.DataFrame  # rows before tune.end only; targets reaching tune.end blanked
    start: str  # first tuning origin (ISO timestamp): the walk's backtest.test_start
    end: str  # tune.end (exclusive)
    test_start: str  # first test origin, for messages


def _ts(text: str, key: str) -> pd.Timestamp:
    from cryptocast.config.dates import to_timestamp

    return to_timestamp(text, key)


def tuning_table(cfg: Config, df: pd.DataFrame) -> TuningPeriod:
    """Cut one series' feature table to the tuning period; refuse one touching the test period.

    Raises:
        ConfigError: ``tune.end`` after the test start, or ``tune.start`` not before ``tune.end``.
        DataError: the period has no room for its folds (from the fold planner).
    """
    from cryptocast.evaluate.walkforward import fold_length_for, test_rows
    from cryptocast.features.table import target_columns

    tu, H = cfg.tune, cfg.features.horizon
    ts = df["timestamp"]
    test_start = ts.iloc[test_rows(df, cfg)[0]]
    end = _ts(tu.end, "tune.end") if tu.end else test_start
    if end > test_start:
        raise ConfigError(
            f"tune.end {tu.end} is after the test start {test_start:%Y-%m-%d %H:%M} "
            "(backtest.test_start): tuning on the test period is a leak; set tune.end to "
            "backtest.test_start or earlier"
        )
    cut = int(ts.searchsorted(end))  # rows [0, cut) are before tune.end
    table = df.iloc[:cut].copy()
    for h, col in enumerate(target_columns(H), start=1):
        # row e's target_h is close[e + h]: blank it when e + h is at or after the cut
        table.loc[table.index[max(cut - h, 0) :], col] = np.nan
    last_origin = cut - H  # origins e with e + H < cut have a realised target inside the cut
    if tu.start:
        start = _ts(tu.start, "tune.start")
        if start >= end:
            raise ConfigError(
                f"tune.start {tu.start} is not before tune.end {end:%Y-%m-%d}; "
                "widen the tuning period"
            )
        lo = int(ts.searchsorted(start))
    else:
        lo = last_origin - tu.folds * fold_length_for(cfg, cfg.data.timeframe)
    if not 0 <= lo < last_origin:
        raise ConfigError(
            f"the tuning period ({tu.folds} folds before {end:%Y-%m-%d}) starts before the data; "
            "set tune.start, fewer tune.folds or a shorter backtest.fold_length"
        )
    return TuningPeriod(table, str(ts.iloc[lo]), str(end), str(test_start))


def trial_config(cfg_dict: dict[str, Any], period_start: str) -> Config:
    """The trial's config walking forward over the tuning period (not the test period)."""
    from cryptocast.config.schema import config_from_dict

    raw = {**cfg_dict, "backtest": {**cfg_dict["backtest"], "test_start": period_start}}
    raw["backtest"]["test_end"] = None  # the cut table ends at tune.end
    return config_from_dict(raw, "tuning trial")


class Pruned(Exception):
    """Raised from the fold callback to stop a walk the pruner gave up on."""


def run_trial(
    cfg_dict: dict[str, Any],
    table: pd.DataFrame,
    period_start: str,
    prune: Callable[[int, float], bool] | None = None,
    emit: Any = None,
) -> dict[str, Any]:
    """Walk forward over the tuning period; score after every fold.

    Args:
        cfg_dict: the trial's full config (its sampled values applied).
        table: the cut feature table from :func:`tuning_table`.
        period_start: first tuning origin.
        prune: ``prune(fold, running_score) -> stop?`` (the live Optuna pruner, or a snapshot).
        emit: executor progress callback (unused: trials report through their result).

    Returns:
        ``{"values": [running score after each fold], "pruned": bool, "value": final score}``.
    """
    from cryptocast.evaluate.walkforward import run_job
    from cryptocast.features.targets import get_target

    cfg = trial_config(cfg_dict, period_start)
    target = get_target(cfg.features.target)
    score = get_score(cfg.tune.metric)
    H = cfg.features.horizon
    close = table["close"].to_numpy("float64")
    seen: dict[str, list[Any]] = {"ends": [], "pred": [], "q": []}
    values: list[float] = []

    def on_fold(ev: dict[str, Any]) -> None:
        seen["ends"].append(ev["ends"])
        seen["pred"].append(ev["pred"])
        seen["q"].append(ev["q"])
        ends = np.concatenate(seen["ends"])
        y_true = target.realised(table, ends, H)  # closes, or annualised RV
        q = None if ev["q"] is None else np.concatenate(seen["q"])
        values.append(score(y_true, np.concatenate(seen["pred"]), close[ends], q, ev["levels"]))
        if prune is not None and prune(ev["fold"], values[-1]):
            raise Pruned

    d = cfg.data
    try:
        res = run_job(cfg, None, d.symbol, d.timeframe, cfg.model.name, on_fold, table, True)
    except Pruned:
        return {"values": values, "pruned": True, "value": values[-1]}
    # the final score from the walk's result, as the backtest scores it: quantiles calibrated per
    # backtest.calibration (the running scores above use the raw ones)
    value = score(res.y_true, res.y_pred, res.last_close, res.y_quantiles, res.quantile_levels)
    return {"values": values, "pruned": False, "value": value}
