"""The target seam in evaluation: how each kind of target is scored, tabled and explained.

A target (:mod:`cryptocast.features.targets`) says what a label is and how a prediction maps
back; its :class:`Scoring`, looked up by the target's ``kind`` in :data:`SCORING`, says everything
evaluation does with the forecasts: the scores of one series' jobs in a backtest, the held-out
scores of ``cryptocast train``, the result fields a report needs, the table columns, the note
that explains them and the unit of the plots. The backtest, the train run and the report ask the
target's ``Scoring`` and never test the kind themselves; a new kind of target adds one entry here.

- price (``log_return``, ``price``): point metrics, DM vs persistence and vs the best other
  neural model, the long/flat trading simulation, and the quantile scores of quantile models.
- vol (``realized_vol``): RMSE/MAE of volatility, QLIKE, Mincer-Zarnowitz, skill and DM vs ``har``
  and ``vol_persistence``, and the volatility-targeted buy-and-hold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cryptocast.evaluate.metrics import as_2d, point_metrics
from cryptocast.evaluate.plots import BUY_HOLD
from cryptocast.evaluate.significance import dm_vs_persistence
from cryptocast.evaluate.trading import simulate

NEURAL = ("performer_bilstm", "lstm", "gru", "transformer")
# Skill this far above persistence on next-candle crypto prices means the model saw the future.
LEAKAGE_SKILL = 0.3
# QLIKE skill this far above vol_persistence means a volatility model saw the future RV: on the
# reference daily test year har scores 0.42-0.46 and the best baseline 0.53 (docs/volatility.md);
# a model fed the next day's RV scores above 0.9.
LEAKAGE_QLIKE_SKILL = 0.8


def is_neural(model: str) -> bool:
    """A neural model's results: one of ``NEURAL``, per series or pooled (``lstm@pooled``)."""
    from cryptocast.evaluate.pooled import base_name

    return base_name(model) in NEURAL


#: one series' scores -> (records in job order, equity curves by model, origins the curves cover)
SeriesScores = tuple[list[dict], dict[str, np.ndarray], np.ndarray]


def evaluate_forecasts(
    symbol: str,
    timeframe: str,
    model: str,
    last_close,
    y_true,
    y_pred,
    fee_bps: float = 10.0,
    slippage_bps: float = 5.0,
    long_short: bool = False,
):
    """One job's forecasts -> (summary record, TradeResult): the glue a backtest runner calls.

    The record holds every point metric at step H (plus ``per_step``), the DM test against
    persistence at step H (squared loss: ``dm_stat_vs_persistence``/``dm_pvalue_vs_persistence``;
    absolute loss: ``dm_pvalue_abs_vs_persistence``) and the trading statistics of the step-1
    sign strategy (``sharpe``, ``max_drawdown``, ... and ``bh_*`` for buy-and-hold). Origins without
    a realised next close are left out of the trading simulation. The record is always complete;
    a user's metric filter applies to what is displayed (``report.results_table(columns=...)``).
    """
    yt, yp, lc = as_2d(y_true, y_pred, last_close)
    rec: dict = {"symbol": symbol, "timeframe": timeframe, "model": model}
    rec.update(point_metrics(yt, yp, lc))
    stat, p = dm_vs_persistence(yt, yp, lc, loss="squared")
    rec["dm_stat_vs_persistence"], rec["dm_pvalue_vs_persistence"] = stat, p
    rec["dm_pvalue_abs_vs_persistence"] = dm_vs_persistence(yt, yp, lc, loss="absolute")[1]
    ok = np.isfinite(yt[:, 0]) & np.isfinite(lc) & (lc > 0)
    trade = simulate(
        lc[ok], yt[ok, 0], yp[ok, 0] / lc[ok] - 1.0, timeframe, fee_bps, slippage_bps, long_short
    )
    rec.update(trade.to_dict())
    return rec, trade


def _job_fields(rec: dict, r: Any, skill_key: str, limit: float) -> None:
    """What every record holds beside its scores: folds, wall time, the leakage flag."""
    rec["folds"] = len(r.fold_info)
    rec["seconds"] = round(r.seconds, 2)
    skill = rec.get(skill_key)
    rec["leakage_suspect"] = bool(skill is not None and np.isfinite(skill) and skill > limit)


def score_price_series(group: Sequence[Any], bt: Any) -> SeriesScores:
    """Point, quantile and trading scores of one series' jobs, with DM vs the best other neural
    model (``dm_best_other``)."""
    from cryptocast.evaluate.probabilistic import add_prob_scores
    from cryptocast.evaluate.risk import add_risk_scores
    from cryptocast.evaluate.significance import dm_vs_best_other

    recs, preds, curves = {}, {}, {}
    for r in group:
        rec, trade = evaluate_forecasts(
            r.symbol, r.timeframe, r.model, r.last_close, r.y_true, r.y_pred,
            bt.fee_bps, bt.slippage_bps, bt.long_short,
        )  # fmt: skip
        _job_fields(rec, r, "skill_rmse", LEAKAGE_SKILL)
        recs[r.model], preds[r.model], curves[r.model] = rec, r.y_pred, trade.equity
        bh = trade.buy_hold_equity
    add_prob_scores(recs, group)
    add_risk_scores(recs, group)  # VaR backtests, FZ0, tail losses, the MCS on CRPS
    y_true = group[0].y_true
    rmse = {m: rec["rmse"] for m, rec in recs.items()}
    best = dm_vs_best_other(y_true, preds, rmse, [m for m in recs if is_neural(m)])
    for m, (other, stat, p) in best.items():
        recs[m].update(dm_best_other=other, dm_stat_vs_best=stat, dm_pvalue_vs_best=p)
    curves[BUY_HOLD] = bh
    return list(recs.values()), curves, np.isfinite(y_true[:, 0])


def score_vol_series(group: Sequence[Any], bt: Any) -> SeriesScores:
    """Volatility scores of one series' jobs, with the leakage flag on QLIKE skill."""
    from cryptocast.evaluate.volatility import score_vol_group

    recs, curves, ok = score_vol_group(list(group), bt)
    for rec, r in zip(recs, group, strict=True):
        _job_fields(rec, r, "skill_qlike_persistence", LEAKAGE_QLIKE_SKILL)
    return recs, curves, ok


def price_holdout(target: Any, df: Any, data: Any, ends: np.ndarray, pred: np.ndarray) -> dict:
    """``cryptocast train``'s test scores of a price forecast."""
    from cryptocast.features.windows import realised_closes

    true = realised_closes(data.close, ends, data.horizon)
    return point_metrics(true, pred, data.close[ends])


def vol_holdout(target: Any, df: Any, data: Any, ends: np.ndarray, pred: np.ndarray) -> dict:
    """``cryptocast train``'s test scores of a volatility forecast."""
    from cryptocast.evaluate.volatility import vol_metrics

    return vol_metrics(target.realised(df, ends, data.horizon), pred)


@dataclass(frozen=True)
class Scoring:
    """Everything evaluation does differently for one kind of target."""

    kind: str
    score_series: Callable[[Sequence[Any], Any], SeriesScores]  # a backtest's series
    holdout: Callable[
        ..., dict
    ]  # (target, df, data, ends, pred) -> ``cryptocast train``'s test scores
    marker: str  # a result field only this kind's records hold
    required_fields: list[str]  # what a report needs in every record
    table_columns: list[str]  # the default columns of tables
    note: str  # report.md's explanation of the headline table
    plot_unit: str  # the y axis of the actual-vs-predicted and fold-error plots
    who_wins: bool  # report.md opens each series with the "who wins" paragraph
    tune_hint: str  # the tune metrics that score this kind


PRICE = Scoring(
    kind="price",
    score_series=score_price_series,
    holdout=price_holdout,
    marker="rmse",
    required_fields=[
        "symbol", "timeframe", "model", "n", "rmse", "mae", "mape", "directional_accuracy",
        "skill_rmse", "dm_pvalue_vs_persistence", "sharpe", "max_drawdown",
    ],
    table_columns=[
        "n", "rmse", "mae", "mape", "directional_accuracy", "skill_rmse", "mase",
        "dm_pvalue_vs_persistence", "dm_pvalue_vs_best", "sharpe", "max_drawdown",
        # quantile models only (absent from point records, so point tables are unchanged)
        "crps", "crps_skill", "coverage_80", "coverage_90", "width_90",
        "dm_pvalue_crps_vs_rw_ewma",
    ],
    note="skill_rmse > 0 and mase < 1 beat persistence; dm_pvalue_vs_persistence is two-sided.",
    plot_unit="close",
    who_wins=True,
    tune_hint="use rmse, mae, rmse_ratio or crps",
)  # fmt: skip
VOL = Scoring(
    kind="vol",
    score_series=score_vol_series,
    holdout=vol_holdout,
    marker="qlike",
    required_fields=["symbol", "timeframe", "model", "n", "rmse_vol", "qlike", "mz_r2"],
    table_columns=[
        "n", "rmse_vol", "mae_vol", "qlike", "mz_r2", "bias_ratio", "skill_qlike", "dm_pvalue_vs_har",
        "spa_p_vs_har", "mcs_qlike_90",
        "skill_qlike_persistence", "dm_pvalue_vs_vol_persistence", "vt_annual_vol",
        "vt_vol_error", "vt_sharpe",
    ],
    note=(
        "Target: realized volatility, annualised (daily RV from hourly candles x sqrt(365), as a "
        "fraction). Price-only scores (MAPE of price, directional accuracy, the long/flat trading "
        "simulation) are not shown: a volatility forecast predicts neither a price nor a direction. "
        "QLIKE (Patton 2011) ranks forecasts robustly to the noise in RV; bias_ratio = mean realised "
        "/ mean forecast variance (1 is unbiased; log models are mapped back with a lognormal "
        "correction from their fit rows); skill_qlike > 0 beats har; "
        "DM p-values are two-sided on QLIKE losses (negative skill with a small p: significantly "
        "worse). vt_* = volatility-targeted buy-and-hold driven by the model's step-1 forecast "
        "(position = vol_target / forecast, capped); the equity plot shows it."
    ),
    plot_unit="annualised volatility",
    who_wins=False,
    tune_hint="use qlike, rmse or mae",
)  # fmt: skip
SCORING: dict[str, Scoring] = {s.kind: s for s in (PRICE, VOL)}


def scoring_for(target: Any) -> Scoring:
    """The ``Scoring`` of a target, or of a kind given by name (``summary.json``'s target kind)."""
    return SCORING[target if isinstance(target, str) else target.kind]


def scoring_of_records(records: Sequence[Mapping]) -> Scoring:
    """The ``Scoring`` whose records these are (tables built from records alone), price if none."""
    for scoring in SCORING.values():
        if scoring.kind != "price" and any(scoring.marker in r for r in records):
            return scoring
    return PRICE
