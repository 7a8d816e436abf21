"""Evaluation: walk-forward folds, point metrics, Diebold-Mariano tests, trading simulation, report.

Pure functions over the arrays a backtest produces; the runner lives elsewhere. ``report`` imports
matplotlib and rich lazily, so importing this package stays cheap.
"""

from cryptocast.evaluate.folds import Fold, make_folds
from cryptocast.evaluate.metrics import (
    METRICS,
    evaluate_forecasts,
    fold_rmse,
    point_metrics,
    select_metrics,
)
from cryptocast.evaluate.significance import (
    diebold_mariano,
    dm_between,
    dm_vs_best_other,
    dm_vs_persistence,
)
from cryptocast.evaluate.trading import TradeResult, TradeStats, simulate

__all__ = [
    "METRICS",
    "Fold",
    "TradeResult",
    "TradeStats",
    "diebold_mariano",
    "dm_between",
    "dm_vs_best_other",
    "dm_vs_persistence",
    "evaluate_forecasts",
    "fold_rmse",
    "make_folds",
    "point_metrics",
    "select_metrics",
    "simulate",
]
