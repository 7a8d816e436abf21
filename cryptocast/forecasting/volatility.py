"""The daily forecast job for a ``realized_vol`` run: the pieces that differ from a price run.

``kinds.VolLog`` calls these for ``job.forecast_series`` when the checkpoint's target is
``realized_vol``. The log is ``data/vol_forecasts/{exchange}/{BASE}-{QUOTE}_1d.parquet``
(``log.VOL_LOG_SCHEMA``): one row per step with the forecast annualised volatility of the UTC day
``target_time``. Scoring fills ``realised_vol`` (the RV of that day from the stored hourly
candles) only once the day is complete, i.e. its last hour is stored; a day with too few hours
stays unscored.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cryptocast.config.timeframes import timeframe_delta
from cryptocast.errors import CheckpointError


def fine_gap(fine: pd.DataFrame, last_daily: pd.Timestamp, source: str) -> str | None:
    """Why the ``source`` candles cannot serve day ``last_daily`` (its last hour not stored)."""
    need = last_daily + pd.Timedelta("1D") - timeframe_delta(source)
    last = fine["timestamp"].iloc[-1] if len(fine) else None
    if last is None or last < need:
        have = "none" if last is None else f"{last:%Y-%m-%d %H:%M}"
        return (
            f"the {source} candles end at {have}, before the last hour of {last_daily:%Y-%m-%d} "
            "(its RV is a feature of the forecast)"
        )
    return None


def predict_latest_vol(
    predictor: Any,
    candles: pd.DataFrame,
    fine: pd.DataFrame,
    fcfg: Any,
    cross: pd.DataFrame | None = None,
):
    """Annualised volatility forecasts (H,) for the days after the last stored daily candle, and
    the origin day's RV (annualised); ``cross``: the ``features.rv_cross`` symbol's candles."""
    from cryptocast.features.table import compute_features, feature_columns
    from cryptocast.features.targets import ANNUALISE

    table = compute_features(candles, fcfg, "1d", fine=fine, cross=cross)
    if feature_columns(table) != list(predictor.feature_names):
        raise CheckpointError(
            "feature list differs from the checkpoint's; retrain the model with this cryptocast "
            "version"
        )
    last = len(table) - 1
    vol = predictor.predict_frame(table, np.array([last]))[0]
    return vol, float(np.exp(table["log_rv_d"].iloc[last]) * ANNUALISE)


def vol_rows(base: dict[str, Any], vol: np.ndarray, rv_last: float, last: pd.Timestamp):
    """Log rows (``VOL_LOG_SCHEMA``) of one forecast; ``base`` holds the shared columns."""
    steps = np.arange(1, len(vol) + 1)
    return pd.DataFrame(
        {
            **base,
            "step": steps,
            "target_time": [last + pd.Timedelta(days=int(h)) for h in steps],
            "rv_last": rv_last,
            "predicted_vol": vol,
            "realised_vol": np.nan,
            "error": np.nan,
        }
    )


def fill_realised_vol(
    log: pd.DataFrame, fine: pd.DataFrame, source: str, min_count: int
) -> tuple[pd.DataFrame, int]:
    """Fill ``realised_vol``/``error`` of unscored rows whose day is complete in ``fine``."""
    from cryptocast.features.targets import ANNUALISE
    from cryptocast.features.volatility import daily_realized_vol
    from cryptocast.forecasting.log import write_realised

    if log.empty or fine.empty:
        return log, 0
    rv = daily_realized_vol(fine, source, min_count).set_index("day")["rv"] * ANNUALISE
    complete_until = fine["timestamp"].iloc[-1] + timeframe_delta(source)  # end of the last hour
    days = pd.DatetimeIndex(log["target_time"])
    realised = rv.reindex(days).to_numpy()
    done = (days + pd.Timedelta("1D")) <= complete_until
    fill = log["realised_vol"].isna().to_numpy() & done & np.isfinite(realised)
    return write_realised(log, fill, realised, "vol")


def live_vol_metrics(log: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per model over its scored rows: n, QLIKE, RMSE of vol, and vol_persistence's on the same
    rows (the origin day's RV as the forecast)."""
    from cryptocast.evaluate.volatility import qlike_losses
    from cryptocast.forecasting.log import scored_by_model

    out: dict[str, dict[str, Any]] = {}
    for model, yt, yp, rv0 in scored_by_model(log, "vol", "rv_last"):
        out[model] = {
            "n": len(yt),
            "qlike": float(np.nanmean(qlike_losses(yt, yp))),
            "rmse_vol": float(np.sqrt(np.mean((yt - yp) ** 2))),
            "persistence_qlike": float(np.nanmean(qlike_losses(yt, rv0))),
            "persistence_rmse_vol": float(np.sqrt(np.mean((yt - rv0) ** 2))),
        }
    return out
