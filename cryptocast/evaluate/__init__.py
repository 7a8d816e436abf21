"""Evaluation: walk-forward folds, point metrics, Diebold-Mariano tests, trading simulation, report.

Pure functions over the arrays a backtest produces, the walk-forward runner (walkforward.py) and
the backtest over every job (backtest.py); scoring.py is the target seam of evaluation.
``report`` imports matplotlib and rich lazily, so importing this package stays cheap.
"""

from cryptocast.evaluate.folds import Fold, make_folds
from cryptocast.evaluate.metrics import (
    METRICS,
    fold_rmse,
    point_metrics,
    select_metrics,
)
from cryptocast.evaluate.scoring import evaluate_forecasts
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
