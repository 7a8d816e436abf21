"""The tidy tables a backtest produces, and their inverse: forecasts and equity rows per job.

``forecasts_frame`` (one row per origin x step, ``FORECAST_COLUMNS`` plus one ``q<level>`` column
per quantile) and ``equity_frame`` are what the runner concatenates across jobs and the report,
the scores and the plots read; ``to_jsonable`` is how summaries and run metrics become strict JSON.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from cryptocast.config.timeframes import timeframe_delta
from cryptocast.errors import DataError
from cryptocast.evaluate.metrics import as_2d

FORECAST_COLUMNS = [
    "timestamp", "symbol", "timeframe", "model", "fold", "step", "last_close", "y_true", "y_pred",
]  # fmt: skip


def quantile_column(level: float) -> str:
    """Column of the forecasts table holding the predicted close at quantile ``level``."""
    return f"q{level:g}"


def forecasts_frame(
    timestamps, symbol: str, timeframe: str, model: str, folds, last_close, y_true, y_pred,
    quantiles=None, levels=None,
) -> pd.DataFrame:  # fmt: skip
    """Tidy rows (one per origin x step) from one job's arrays: (n,), (n,), (n, H), (n, H); a
    quantile model adds one column per level (``quantile_column``) from ``quantiles`` (n, H, Q)."""
    yt, yp, lc = as_2d(y_true, y_pred, last_close)
    n, horizon = yt.shape
    ts = pd.DatetimeIndex(pd.to_datetime(np.asarray(timestamps), utc=True))
    extra = {}
    if quantiles is not None:
        q = np.asarray(quantiles, dtype=np.float64)
        extra = {quantile_column(t): q[:, :, i].reshape(-1) for i, t in enumerate(levels)}
    return pd.DataFrame(
        {
            "timestamp": np.repeat(ts.to_numpy(), horizon),
            "symbol": symbol,
            "timeframe": timeframe,
            "model": model,
            "fold": np.repeat(np.asarray(folds, dtype=np.int64), horizon),
            "step": np.tile(np.arange(1, horizon + 1, dtype=np.int64), n),
            "last_close": np.repeat(lc, horizon),
            "y_true": yt.reshape(-1),
            "y_pred": yp.reshape(-1),
            **extra,
        }
    ).astype({"timestamp": "datetime64[ns, UTC]"})


def series_arrays(forecasts: pd.DataFrame) -> dict[str, np.ndarray]:
    """Inverse of ``forecasts_frame`` for ONE (symbol, timeframe, model): the arrays metrics take.

    Returns ``timestamps`` (n,), ``fold`` (n,), ``last_close`` (n,), ``y_true`` (n, H), ``y_pred``.
    """
    keys = forecasts[["symbol", "timeframe", "model"]].drop_duplicates()
    if len(keys) != 1:
        raise DataError(f"series_arrays needs one symbol/timeframe/model, got {len(keys)}")
    wide = forecasts.pivot(index="timestamp", columns="step", values=["y_true", "y_pred"])
    first = forecasts[forecasts["step"] == forecasts["step"].min()].set_index("timestamp")
    first = first.loc[wide.index]
    return {
        "timestamps": wide.index.to_numpy(),
        "fold": first["fold"].to_numpy(),
        "last_close": first["last_close"].to_numpy(np.float64),
        "y_true": wide["y_true"].to_numpy(np.float64),
        "y_pred": wide["y_pred"].to_numpy(np.float64),
    }


def equity_frame(
    timestamps, timeframe: str, symbol: str, curves: Mapping[str, np.ndarray]
) -> pd.DataFrame:
    """Tidy equity rows from ``TradeResult.equity`` arrays (n + 1 points each) keyed by model.

    Point 0 sits at the first decision close, point i at the close of the candle after origin i-1.
    """
    ts = pd.DatetimeIndex(pd.to_datetime(np.asarray(timestamps), utc=True))
    times = ts[:1].append(ts + timeframe_delta(timeframe))
    frames = []
    for model, eq in curves.items():
        eq = np.asarray(eq, dtype=np.float64)
        if eq.size != times.size:
            raise DataError(f"equity of {model} has {eq.size} points, expected {times.size}")
        frames.append(
            pd.DataFrame(
                {
                    "timestamp": times,
                    "symbol": symbol,
                    "timeframe": timeframe,
                    "model": model,
                    "equity": eq,
                }
            )  # fmt: skip
        )
    return pd.concat(frames, ignore_index=True)


def to_jsonable(obj):
    """numpy scalars/arrays -> Python; NaN and inf -> None (strict JSON has neither)."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer, np.bool_)):
        return obj.item()
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, (pd.Timestamp, Path)):
        return str(obj)
    return obj
