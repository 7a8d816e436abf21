"""The kinds of forecast log the daily job writes: one object per kind, looked up by target kind.

``job.forecast_series`` runs one path for every run; what differs between a price run and a
``realized_vol`` run is asked of ``KINDS[get_target(target).kind]`` (``"price"`` or ``"vol"``):

- ``store_kind`` / ``schema``: where the log lives (``data/{store_kind}/...``) and its columns;
- ``extra_timeframes(fcfg)``: candles fetched besides the run's own timeframe;
- ``extra_inputs(data_dir, exchange, symbol, fcfg)``: what the forecast reads besides them (the
  ``rv_source`` candles; the ``features.rv_cross`` symbol's, read as stored);
- ``stale_reason(inp)``: why those extra candles cannot serve this forecast (None: they can);
- ``features(inp)``: the series' feature table (a series outside a pooled run's pool is scaled
  on its rows, ``forecasting.pooled.outside_predictor``);
- ``window(inp)``: (the table the gap rule reads, what ``predict_rows`` needs), and
  ``gap_hint``, how the DataError of a gap says to fix it;
- ``predict_rows(inp, window, base)``: the log rows of this forecast (CheckpointError when the
  model predicts a non-finite value); ``base`` holds the columns every step shares;
- ``score(log, inp)``: fill the realised values of past rows (log, n filled);
- ``live(log, inp)``: live accuracy per model over the scored rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptocast.errors import CheckpointError
from cryptocast.forecasting.freshness import candle_gaps
from cryptocast.forecasting.log import (
    LOG_SCHEMA,
    VOL_LOG_SCHEMA,
    fill_realised,
    live_metrics,
    live_prob_metrics,
    price_rows,
)
from cryptocast.forecasting.volatility import (
    fill_realised_vol,
    fine_gap,
    live_vol_metrics,
    predict_latest_vol,
    vol_rows,
)


@dataclass(frozen=True)
class Inputs:
    """What one forecast reads: the run's predictor and features config, the stored candles of its
    series (``extra``: what its kind's ``extra_inputs`` loads), and the log it writes to."""

    predictor: Any
    fcfg: Any  # the checkpoint's FeaturesConfig
    timeframe: str
    candles: pd.DataFrame
    extra: dict[str, pd.DataFrame]
    log_path: Path

    @property
    def last_close(self) -> float:
        return float(self.candles["close"].iloc[-1])


def forecast_table(
    predictor: Any, candles: pd.DataFrame, fcfg: Any, timeframe: str
) -> pd.DataFrame:
    """The feature table the forecast reads its last window from, checked against the checkpoint.

    Features are computed on the whole stored series (as in training and the backtest), so the
    window's indicator values are the ones the backtest would see.
    """
    from cryptocast.features.table import compute_features, feature_columns

    table = compute_features(candles, fcfg, timeframe)
    names = feature_columns(table)
    if names != list(predictor.feature_names):
        extra = sorted(set(names) - set(predictor.feature_names))
        lack = sorted(set(predictor.feature_names) - set(names))
        raise CheckpointError(
            f"feature list differs from the checkpoint's (new: {extra[:3]}, missing: {lack[:3]}, "
            "or a different order); retrain the model with this cryptocast version"
        )
    if table["timestamp"].iloc[-1] != candles["timestamp"].iloc[-1]:  # pragma: no cover
        raise CheckpointError("feature table does not end at the last stored candle")
    return table


def check_finite(
    base: dict[str, Any], noun: str, shown: np.ndarray, *more: np.ndarray | None, log_path: Path
) -> None:
    """CheckpointError naming ``shown`` when it or any of ``more`` (None: absent) is not finite."""
    if not all(np.isfinite(a).all() for a in (shown, *more) if a is not None):
        raise CheckpointError(
            f"{base['run_id']}: the model predicted a non-finite {noun} ({shown.tolist()}); "
            f"nothing written to {log_path}; retrain the run"
        )


class PriceLog:
    """Close forecasts (``data/forecasts``, ``LOG_SCHEMA``; see log.py): one row per step, with
    the predicted quantiles of a quantile model."""

    store_kind = "forecasts"
    schema = LOG_SCHEMA
    # `fetch` resumes after the last stored candle and before the first, never inside: a hole is
    # filled by importing its candles (an import adds candles, it never changes stored ones)
    gap_hint = (
        "the exchange may have no candles there; if you have them, import them with "
        "`cryptocast fetch --import FILE` (fetch does not refill holes)"
    )

    def extra_timeframes(self, fcfg: Any) -> tuple[str, ...]:
        return ()

    def extra_inputs(self, data_dir: Any, exchange: str, symbol: str, fcfg: Any) -> dict:
        return {}

    def stale_reason(self, inp: Inputs) -> str | None:
        return None

    def features(self, inp: Inputs) -> pd.DataFrame:
        return forecast_table(inp.predictor, inp.candles, inp.fcfg, inp.timeframe)

    def window(self, inp: Inputs) -> tuple[pd.DataFrame, pd.DataFrame]:
        table = self.features(inp)
        return table, table

    def predict_rows(self, inp: Inputs, table: pd.DataFrame, base: dict[str, Any]) -> pd.DataFrame:
        predictor = inp.predictor
        point, q = predictor.predict_distribution(
            predictor.scaled_table(table),
            table["close"].to_numpy("float64"),
            np.array([len(table) - 1]),
        )
        prices, quantiles = point[0], (None if q is None else q[0])
        check_finite(base, "price", prices, quantiles, log_path=inp.log_path)
        return price_rows(base, prices, quantiles, predictor.levels, inp.last_close, inp.timeframe)

    def score(self, log: pd.DataFrame, inp: Inputs) -> tuple[pd.DataFrame, int]:
        return fill_realised(log, inp.candles)

    def live(self, log: pd.DataFrame, inp: Inputs) -> dict[str, dict[str, Any]]:
        """Live point accuracy per model, plus coverage and CRPS beside rw_ewma for quantile
        rows."""
        from cryptocast.forecasting.calibration import live_calibrated

        live = live_metrics(log)
        for model, rec in live_prob_metrics(log, inp.candles).items():
            live.setdefault(model, {}).update(rec)
        for model, rec in live_calibrated(log).items():  # raw and calibrated on the same rows
            live.setdefault(model, {}).update(rec)
        return live


class VolLog:
    """Annualised volatility forecasts of a ``realized_vol`` run (``data/vol_forecasts``,
    ``VOL_LOG_SCHEMA``; see volatility.py), read from the daily and the ``rv_source`` candles."""

    store_kind = "vol_forecasts"
    schema = VOL_LOG_SCHEMA
    gap_hint = PriceLog.gap_hint

    def extra_timeframes(self, fcfg: Any) -> tuple[str, ...]:
        return (fcfg.rv_source,)

    def extra_inputs(self, data_dir: Any, exchange: str, symbol: str, fcfg: Any) -> dict:
        """The series' ``rv_source`` candles, and under ``"cross"`` the ``features.rv_cross``
        symbol's (read as stored: the job refreshes only its own series)."""
        from cryptocast.data.store import load_series
        from cryptocast.features.volatility import load_cross

        extra = {fcfg.rv_source: load_series(data_dir, exchange, symbol, fcfg.rv_source)}
        if fcfg.rv_cross is not None:
            extra["cross"] = load_cross(data_dir, exchange, symbol, fcfg)
        return extra

    def stale_reason(self, inp: Inputs) -> str | None:
        source = inp.fcfg.rv_source
        return fine_gap(inp.extra[source], inp.candles["timestamp"].iloc[-1], source)

    def features(self, inp: Inputs) -> pd.DataFrame:
        from cryptocast.features.table import compute_features

        fine, cross = inp.extra[inp.fcfg.rv_source], inp.extra.get("cross")
        return compute_features(inp.candles, inp.fcfg, "1d", fine=fine, cross=cross)

    def window(self, inp: Inputs) -> tuple[pd.DataFrame, None]:
        """The same gap rule, on the daily candles of the window."""
        return candle_gaps(inp.candles, inp.timeframe), None

    def predict_rows(self, inp: Inputs, _: None, base: dict[str, Any]) -> pd.DataFrame:
        fine = inp.extra[inp.fcfg.rv_source]
        cross = inp.extra.get("cross")
        vol, rv_last = predict_latest_vol(inp.predictor, inp.candles, fine, inp.fcfg, cross)
        check_finite(base, "volatility", vol, log_path=inp.log_path)
        return vol_rows(base, vol, rv_last, base["last_candle"])

    def score(self, log: pd.DataFrame, inp: Inputs) -> tuple[pd.DataFrame, int]:
        source = inp.fcfg.rv_source
        return fill_realised_vol(log, inp.extra[source], source, inp.fcfg.rv_min_hours)

    def live(self, log: pd.DataFrame, inp: Inputs) -> dict[str, dict[str, Any]]:
        return live_vol_metrics(log)


#: ``Target.kind`` (cryptocast.features.targets) -> the log its runs' forecasts go to
KINDS: dict[str, PriceLog | VolLog] = {"price": PriceLog(), "vol": VolLog()}
