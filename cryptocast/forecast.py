"""The daily forecast job: refresh a run's series, predict the next candles, append to its log.

For one completed training run (``runs/NAME-TIMESTAMP/checkpoint.pt``), ``forecast_series``:

1. fetches the candles the model was trained on incrementally (``fetch_series``, the code path of
   ``cryptocast fetch``) unless told not to;
2. refuses stale data: a failed fetch, or a newest stored candle whose open time is more than one
   period plus ``grace`` before now (i.e. the next candle closed over ``grace`` ago and is not
   stored), raises StaleDataError and writes nothing, unless ``allow_stale`` (the rows are then
   flagged ``stale``);
3. computes the features with the checkpoint's features config, checks the feature list against
   the checkpoint, and predicts the ``horizon`` candles after the LAST stored (closed) candle through
   ``Predictor`` (the path the backtest uses);
4. appends one row per step to the forecast log (see ``forecast_log``), idempotently, under the
   log's lock, with an atomic write; optionally scores past forecasts.

The clock is injectable (``now`` argument or ``CRYPTOCAST_NOW``) so historical data can be replayed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptocast.dates import to_timestamp
from cryptocast.errors import CheckpointError, ConfigError, ExchangeError, StaleDataError
from cryptocast.timeframes import timeframe_delta

CLOCK_ENV = "CRYPTOCAST_NOW"
GRACE_FRACTION = 0.1  # default grace: a tenth of a candle (2.4 h for 1d, 6 min for 1h)
FETCH_ATTEMPTS = 6  # tries per exchange request before the fetch counts as failed


@dataclass
class ForecastResult:
    """What one series' forecast did. ``rows`` holds this run's forecast (one row per step)."""

    exchange: str
    symbol: str
    timeframe: str
    run_id: str
    model: str
    log_path: Path
    last_candle: pd.Timestamp
    last_close: float
    rows: pd.DataFrame
    added: int
    stale: bool
    stale_reason: str | None = None
    new_candles: int | None = None  # None: no fetch
    scored: int = 0
    live: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def series(self) -> str:
        return f"{self.exchange} {self.symbol} {self.timeframe}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (timestamps as ISO strings, NaN as None)."""

        def num(x: Any) -> Any:
            return None if x is None or (isinstance(x, float) and not np.isfinite(x)) else x

        return {
            "series": self.series,
            "exchange": self.exchange,
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "run_id": self.run_id,
            "model": self.model,
            "log": str(self.log_path),
            "last_candle": self.last_candle.isoformat(),
            "last_close": self.last_close,
            "added": self.added,
            "stale": self.stale,
            "stale_reason": self.stale_reason,
            "new_candles": self.new_candles,
            "forecast": [
                {
                    "step": int(r.step),
                    "target_time": r.target_time.isoformat(),
                    **(
                        {"predicted_vol": float(r.predicted_vol)}  # annualised, a fraction
                        if "predicted_vol" in self.rows.columns
                        else {
                            "predicted_close": float(r.predicted_close),
                            "predicted_return": float(r.predicted_return),
                            # quantile models: {level: predicted close}
                            **(
                                {"quantiles": json.loads(r.quantiles)}
                                if getattr(r, "quantiles", "")
                                else {}
                            ),
                        }
                    ),
                }
                for r in self.rows.itertuples()
            ],
            "scored": self.scored,
            "live": {m: {k: num(v) for k, v in d.items()} for m, d in self.live.items()},
        }


def now_utc(now: str | pd.Timestamp | None = None) -> pd.Timestamp:
    """The job's clock: ``now``, else ``$CRYPTOCAST_NOW``, else the wall clock (UTC)."""
    value = now if now is not None and now != "" else os.environ.get(CLOCK_ENV) or None
    if value is None:
        return pd.Timestamp.now(tz="UTC")
    if isinstance(value, pd.Timestamp):
        return value.tz_localize("UTC") if value.tzinfo is None else value.tz_convert("UTC")
    return to_timestamp(value, f"the clock (--now or {CLOCK_ENV})")


def human_duration(delta: pd.Timedelta) -> str:
    """``2h 24min``, ``3d 0h 5min``, ``6min``: a duration as people write it (to the minute)."""
    minutes = int(pd.Timedelta(delta).total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{days}d"] if days else []
    if days or hours:
        parts.append(f"{hours}h")
    if mins or not parts:
        parts.append(f"{mins}min")
    return " ".join(parts)


def parse_grace(grace: str | pd.Timedelta | None, timeframe: str) -> pd.Timedelta:
    """Grace period after a candle should have closed; default a tenth of the candle."""
    if grace is None or grace == "":
        return timeframe_delta(timeframe) * GRACE_FRACTION
    try:
        delta = pd.Timedelta(grace)
    except (ValueError, TypeError):
        raise ConfigError(f"--grace {grace!r} is not a duration; use e.g. 30min, 2h, 1d") from None
    if delta < pd.Timedelta(0):
        raise ConfigError(f"--grace {grace!r} is negative")
    return delta


def checkpoint_file(run: Path) -> Path:
    """``run`` (a run folder or its checkpoint file) -> the checkpoint path; clear errors."""
    from cryptocast.runs import CHECKPOINT

    run = Path(run)
    if run.is_file():
        return run
    if not run.exists():
        raise CheckpointError(
            f"run directory {run} not found; pass a folder written by `cryptocast train` "
            "(runs/NAME-TIMESTAMP) or use --config to pick the latest run"
        )
    ckpt = run / CHECKPOINT
    if not ckpt.is_file():
        raise CheckpointError(
            f"{run} has no {CHECKPOINT} (training unfinished or failed); pass a completed run"
        )
    return ckpt


def run_from_config(config: Path, overrides: list[str] | None = None) -> Path:
    """The latest completed run of a config (``output.runs_dir`` / ``output.name``)."""
    from cryptocast.config import load_config
    from cryptocast.runs import latest_run

    cfg = load_config(config, overrides or [])
    return latest_run(Path(cfg.output.runs_dir), cfg.output.name or cfg.model.name)


def series_of(meta: dict[str, Any], ckpt: Path) -> tuple[str, str, str, Any]:
    """(exchange, symbol, timeframe, FeaturesConfig) the checkpoint was trained on."""
    from cryptocast.config import FeaturesConfig

    try:
        d = meta["data"]
        fcfg = FeaturesConfig.model_validate(meta["features_config"])
        return str(d["exchange"]), str(d["symbol"]), str(d["timeframe"]), fcfg
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(
            f"{ckpt}: checkpoint lacks its data/features description ({type(err).__name__}); retrain"
        ) from None


def check_spacing(candles: pd.DataFrame, timeframe: str, series: str) -> None:
    """CheckpointError when the stored candles are not ``timeframe`` apart (e.g. 1h data, 1d model)."""
    ts = candles["timestamp"].iloc[-200:]
    if len(ts) < 3:
        return
    step = pd.Series(ts).diff().dropna().median()
    if step != timeframe_delta(timeframe):
        raise CheckpointError(
            f"{series}: the stored candles are {human_duration(step)} apart but the checkpoint was "
            f"trained on "
            f"{timeframe} candles; forecast with a model trained on this timeframe"
        )


def predict_latest(
    predictor: Any, candles: pd.DataFrame, fcfg: Any, timeframe: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """Prices (H,) for the H candles after the last stored candle, via ``Predictor``, and the
    price quantiles (H, Q) of a quantile model (None for a point model).

    Features are computed on the whole stored series (as in training and the backtest), so the
    window's indicator values are the ones the backtest would see.
    """
    from cryptocast.features import compute_features, feature_columns

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
    point, q = predictor.predict_distribution(
        predictor.scaled_table(table),
        table["close"].to_numpy("float64"),
        np.array([len(table) - 1]),
    )
    return point[0], (None if q is None else q[0])


def _fetch(data_dir: Path, ex: str, sym: str, tf: str, url: str | None, now: pd.Timestamp) -> int:
    from cryptocast.data.exchange import RetryPolicy
    from cryptocast.data.fetch import fetch_series
    from cryptocast.data.store import read_ohlcv, series_path

    path = series_path(data_dir, ex, sym, tf)
    since = None
    if path.exists():  # resume only; never backfill before the first stored candle here
        since = str(read_ohlcv(path)["timestamp"].iloc[0])
    rep = fetch_series(
        data_dir,
        ex,
        sym,
        tf,
        since=since,
        exchange_url=url,
        retry=RetryPolicy(attempts=FETCH_ATTEMPTS),
        now_ms=int(now.value // 1_000_000),
    )
    return rep.new_candles


def forecast_series(
    run: Path,
    data_dir: Path,
    *,
    fetch: bool = True,
    exchange_url: str | None = None,
    allow_stale: bool = False,
    timeframe: str | None = None,
    now: str | pd.Timestamp | None = None,
    grace: str | pd.Timedelta | None = None,
    score: bool = False,
    lock_timeout: float = 10.0,
) -> ForecastResult:
    """Forecast the next ``horizon`` candles of the run's series and log them (see module doc).

    Args:
        run: a run folder (or its checkpoint file).
        timeframe: the timeframe the caller expects; must equal the checkpoint's.
        now: the clock (default ``$CRYPTOCAST_NOW`` or the wall clock).
        grace: slack after a candle should have closed before the data counts as stale.
        score: also fill realised closes of past forecasts and compute live accuracy.
        lock_timeout: seconds to wait for another process working on the same log.

    Raises:
        CheckpointError: missing/corrupt checkpoint or a timeframe/feature mismatch.
        StaleDataError: the fetch failed or the data is too old (and not ``allow_stale``).
        ExchangeError: the fetch failed and no candles are stored at all.
        LockedError, DataError, ConfigError: as named; nothing is written to the log.
    """
    from cryptocast.data.store import load_series, series_path, write_parquet_atomic
    from cryptocast.forecast_log import (
        append_rows,
        fill_realised,
        log_lock,
        quantiles_json,
        read_log,
    )
    from cryptocast.inference import Predictor
    from cryptocast.targets import get_target

    ckpt = checkpoint_file(run)
    predictor = Predictor.from_checkpoint(ckpt)
    meta = predictor.meta or {}
    ex, sym, tf, fcfg = series_of(meta, ckpt)
    # a realized_vol run logs volatility to its own log (cryptocast.forecast_vol)
    vol = get_target(predictor.target).kind == "vol"
    if vol:
        import cryptocast.forecast_vol as fv
        from cryptocast.forecast_log import VOL_LOG_SCHEMA
    schema = VOL_LOG_SCHEMA if vol else None
    series = f"{ex} {sym} {tf}"
    if timeframe is not None and timeframe != tf:
        raise CheckpointError(
            f"{ckpt} was trained on {tf} candles but {timeframe} was asked for; "
            f"use a run trained on {timeframe} (or drop --timeframe)"
        )
    clock = now_utc(now)
    slack = parse_grace(grace, tf)
    log_path = series_path(data_dir, ex, sym, tf, kind="vol_forecasts" if vol else "forecasts")
    with log_lock(log_path, lock_timeout):
        log = read_log(log_path, schema)  # an unreadable log fails before any work
        new_candles, fetch_error = None, None
        if fetch:
            try:
                new_candles = _fetch(Path(data_dir), ex, sym, tf, exchange_url, clock)
                if vol:
                    _fetch(Path(data_dir), ex, sym, fcfg.rv_source, exchange_url, clock)
            except ExchangeError as err:
                fetch_error = str(err)
        if fetch_error is not None and not series_path(data_dir, ex, sym, tf).exists():
            raise ExchangeError(
                f"{series}: fetch from {ex} failed and no candles are stored yet ({fetch_error})"
            )
        candles = load_series(data_dir, ex, sym, tf)
        check_spacing(candles, tf, series)
        last = candles["timestamp"].iloc[-1]
        if clock < last + timeframe_delta(tf):
            raise ConfigError(
                f"{series}: the clock {clock:%Y-%m-%d %H:%M} UTC is before the newest stored "
                f"candle closed ({last + timeframe_delta(tf):%Y-%m-%d %H:%M}); a forecast made "
                "then cannot use it: fix --now / $CRYPTOCAST_NOW"
            )
        age = clock - last
        reason = None
        if fetch_error is not None:
            reason = f"fetch from {ex} failed ({fetch_error})"
        elif age > timeframe_delta(tf) + slack:
            reason = (
                f"newest stored candle {last:%Y-%m-%d %H:%M} is {human_duration(age)} old at "
                f"{clock:%Y-%m-%d %H:%M} UTC, more than one {tf} candle plus "
                f"{human_duration(slack)} grace"
            )
        if vol:
            fine = load_series(data_dir, ex, sym, fcfg.rv_source)
            reason = reason or fv.fine_gap(fine, last, fcfg.rv_source)
        if reason is not None and not allow_stale:
            raise StaleDataError(
                f"{series}: {reason}; nothing written to {log_path} "
                "(fix the data source, or pass --allow-stale to log a forecast flagged stale)"
            )
        last_close = float(candles["close"].iloc[-1])
        if vol:
            forecast_vol, rv_last = fv.predict_latest_vol(predictor, candles, fine, fcfg)
            if not np.isfinite(forecast_vol).all():
                raise CheckpointError(
                    f"{ckpt.parent.name}: the model predicted a non-finite volatility "
                    f"({forecast_vol.tolist()}); nothing written to {log_path}; retrain the run"
                )
            base = {
                "made_at": clock,
                "last_candle": last,
                "model": str(meta.get("model_config", {}).get("name", "?")),
                "run_id": ckpt.parent.name,
                "config_hash": str(meta.get("config_hash", "")),
                "stale": reason is not None,
            }
            rows = fv.vol_rows(base, forecast_vol, rv_last, last)
            log, added = append_rows(log, rows, schema)
            scored = 0
            if score:
                log, scored = fv.fill_realised_vol(log, fine, fcfg.rv_source, fcfg.rv_min_hours)
            if added or scored:
                write_parquet_atomic(log, log_path)
            live = fv.live_vol_metrics(log) if score else {}
            return ForecastResult(
                ex, sym, tf, ckpt.parent.name, base["model"], log_path, last, last_close, rows,
                added, reason is not None, reason, new_candles, scored, live,
            )  # fmt: skip
        prices, quantiles = predict_latest(predictor, candles, fcfg, tf)
        if not np.isfinite(prices).all() or (
            quantiles is not None and not np.isfinite(quantiles).all()
        ):
            raise CheckpointError(
                f"{ckpt.parent.name}: the model predicted a non-finite price ({prices.tolist()}); "
                f"nothing written to {log_path}; retrain the run"
            )
        steps = np.arange(1, len(prices) + 1)
        rows = pd.DataFrame(
            {
                "made_at": clock,
                "last_candle": last,
                "step": steps,
                "target_time": [last + timeframe_delta(tf) * int(h) for h in steps],
                "model": str(meta.get("model_config", {}).get("name", "?")),
                "run_id": ckpt.parent.name,
                "config_hash": str(meta.get("config_hash", "")),
                "last_close": last_close,
                "predicted_close": prices,
                "predicted_return": prices / last_close - 1.0,
                "stale": reason is not None,
                "realised_close": np.nan,
                "error": np.nan,
                "quantiles": (
                    [quantiles_json(predictor.levels, qh) for qh in quantiles]
                    if quantiles is not None
                    else ""
                ),
            }
        )
        log, added = append_rows(log, rows)
        scored = 0
        if score:
            log, scored = fill_realised(log, candles)
        if added or scored:
            write_parquet_atomic(log, log_path)
    return ForecastResult(
        exchange=ex,
        symbol=sym,
        timeframe=tf,
        run_id=ckpt.parent.name,
        model=str(rows["model"].iloc[0]),
        log_path=log_path,
        last_candle=last,
        last_close=last_close,
        rows=rows,
        added=added,
        stale=reason is not None,
        stale_reason=reason,
        new_candles=new_candles,
        scored=scored,
        live=_live(log, candles) if score else {},
    )


def _live(log: pd.DataFrame, candles: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Live point accuracy per model, plus coverage and CRPS beside rw_ewma for quantile rows."""
    from cryptocast.forecast_log import live_metrics, live_prob_metrics

    live = live_metrics(log)
    for model, rec in live_prob_metrics(log, candles).items():
        live.setdefault(model, {}).update(rec)
    return live
