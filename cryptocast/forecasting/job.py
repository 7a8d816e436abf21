"""The daily forecast job: refresh a run's series, predict the next candles, append to its log.

For one completed training run (``runs/NAME-TIMESTAMP/checkpoint.pt``), ``forecast_series``:

1. refuses a model older than ``forecast.max_model_age`` (``now - trained_until``; see
   ``freshness``) with ModelTooOldError, before any work, unless ``allow_old_model``;
2. fetches the candles the model was trained on incrementally (``fetch_series``, the code path of
   ``cryptocast fetch``) unless told not to;
3. refuses stale data: a failed fetch, or a candle that closed more than ``grace`` ago and is
   missing from the store, raises StaleDataError and writes nothing, unless ``allow_stale`` (the
   rows are then flagged ``stale``);
4. computes the features with the checkpoint's features config, checks the feature list against
   the checkpoint, refuses a window that spans a gap over ``features.gap_tolerance`` (DataError,
   or rows flagged ``gap`` with ``allow_gaps``), and predicts the ``horizon`` candles after the
   LAST stored (closed) candle through ``Predictor`` (the path the backtest uses);
5. appends one row per step to the forecast log (see ``log``), idempotently, under the log's
   lock, with an atomic write; optionally scores past forecasts. The lock covers only this read,
   change and replace of the log, not the fetch, so runs of other models on the same series
   wait milliseconds, not for the exchange.

A model trained past the forecast's origin (a replay with a clock before ``trained_until``) is
refused: its forecast would be scored on closes it learnt from.

What differs between a price run and a ``realized_vol`` run (the log, the extra candles, the gap
table, the prediction, the scores) is asked of the run's kind of log (``kinds.KINDS``).

The clock is injectable (``now`` argument or ``CRYPTOCAST_NOW``) so historical data can be replayed.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from cryptocast.config.dates import CLOCK_ENV
from cryptocast.config.dates import now_utc as clock
from cryptocast.config.timeframes import human_duration, timeframe_delta
from cryptocast.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    ExchangeError,
    StaleDataError,
)
from cryptocast.forecasting.freshness import (
    check_model_age,
    check_spacing,
    check_trained_before,
    gap_reason,
    max_model_age,
    parse_grace,
    stale_reason,
    trained_until,
)
from cryptocast.forecasting.kinds import KINDS, Inputs
from cryptocast.forecasting.result import ForecastResult

__all__ = [
    "ForecastResult",
    "forecast_series",
    "human_duration",
    "now_utc",
    "parse_grace",
    "run_from_config",
]

FETCH_ATTEMPTS = 6  # tries per exchange request before the fetch counts as failed


def now_utc(now: str | pd.Timestamp | None = None) -> pd.Timestamp:
    """The job's clock: ``now``, else ``$CRYPTOCAST_NOW``, else the wall clock (UTC)."""
    return clock(now, f"--now or {CLOCK_ENV}")


def checkpoint_file(run: Path) -> Path:
    """``run`` (a run folder or its checkpoint file) -> the checkpoint path; clear errors."""
    from cryptocast.training.runs import CHECKPOINT

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


def run_from_config(config: Path, overrides: list[str] | None = None) -> tuple[Path, Any]:
    """(run folder, Config): the newest completed run trained from ``config`` + ``overrides``.

    A run matches when its recorded training hash equals the config's (``Config.training_hash``:
    every section but output, backtest and forecast), so a run of another config sharing the
    run name is never used. CheckpointError naming the config and the train command otherwise.
    """
    from cryptocast.config.schema import load_config
    from cryptocast.training.runs import latest_run

    cfg = load_config(config, overrides or [])
    source = " ".join([str(config), *(f"--set {o}" for o in overrides or [])])
    name = cfg.output.name or cfg.model.name
    return latest_run(Path(cfg.output.runs_dir), name, cfg.training_hash(), source), cfg


def series_of(meta: dict[str, Any], ckpt: Path) -> tuple[str, str, str, Any]:
    """(exchange, symbol, timeframe, FeaturesConfig) the checkpoint was trained on."""
    from cryptocast.config.schema import FeaturesConfig

    try:
        d = meta["data"]
        fcfg = FeaturesConfig.model_validate(meta["features_config"])
        return str(d["exchange"]), str(d["symbol"]), str(d["timeframe"]), fcfg
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(
            f"{ckpt}: checkpoint lacks its data/features description ({type(err).__name__}); retrain"
        ) from None


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
    allow_old_model: bool = False,
    allow_gaps: bool = False,
    forecast_cfg: Any = None,
    timeframe: str | None = None,
    now: str | pd.Timestamp | None = None,
    grace: str | pd.Timedelta | None = None,
    score: bool = False,
    lock_timeout: float = 10.0,
    symbol: str | None = None,
) -> ForecastResult:
    """Forecast the next ``horizon`` candles of the run's series and log them (see module doc).

    Args:
        run: a run folder (or its checkpoint file).
        symbol: the series of a pooled run to forecast (``forecasting.pooled``); None: a
            per-series run's own series, or a pooled run's only evaluated one.
        timeframe: the timeframe the caller expects; must equal the checkpoint's.
        now: the clock (default ``$CRYPTOCAST_NOW`` or the wall clock).
        grace: how long after a candle closed its absence is tolerated (default a tenth of one).
        allow_old_model: forecast with a model older than ``forecast.max_model_age``.
        allow_gaps: forecast from a window spanning a gap; the rows are flagged ``gap``.
        forecast_cfg: a ``ForecastConfig`` (``max_model_age``); None: the run's own config.
        score: also fill realised closes of past forecasts and compute live accuracy.
        lock_timeout: seconds (finite, >= 0) to wait for another process writing the same log;
            the lock is held only while the log is read, changed and replaced, not during the
            fetch.

    Raises:
        CheckpointError: missing/corrupt checkpoint, one swapped in from another run, a
            timeframe/feature mismatch, or a model trained past the forecast's origin (a replay).
        StaleDataError: the fetch failed or the data is too old (and not ``allow_stale``).
        ModelTooOldError: the model is older than ``forecast.max_model_age``.
        DataError: the window spans a gap (and not ``allow_gaps``), or unreadable data.
        ExchangeError: the fetch failed and no candles are stored at all.
        LockedError, DataError, ConfigError: as named (ConfigError for a negative or NaN
            ``lock_timeout``, or a ``symbol`` the run does not forecast); nothing is written.
    """
    from cryptocast.data.store import load_series, series_path, write_parquet_atomic
    from cryptocast.features.targets import get_target
    from cryptocast.forecasting.calibration import calibrate_rows
    from cryptocast.forecasting.log import (
        append_rows,
        check_lock_timeout,
        load_log,
        log_lock,
        read_log,
    )
    from cryptocast.forecasting.pooled import outside_predictor
    from cryptocast.training.inference import Predictor

    ckpt = checkpoint_file(run)
    predictor = Predictor.from_checkpoint(ckpt, symbol)
    meta = predictor.meta or {}
    ex, sym, tf, fcfg = series_of(meta, ckpt)
    kind = KINDS[get_target(predictor.target).kind]  # a realized_vol run logs volatility
    series = f"{ex} {sym} {tf}"
    if timeframe is not None and timeframe != tf:
        raise CheckpointError(
            f"{ckpt} was trained on {tf} candles but {timeframe} was asked for; "
            f"use a run trained on {timeframe} (or drop --timeframe)"
        )
    check_lock_timeout(lock_timeout)
    clock = now_utc(now)
    slack = parse_grace(grace, tf)
    if forecast_cfg is None:
        from cryptocast.config.schema import ForecastConfig

        raw = (meta.get("config") or {}).get("forecast") or {}
        forecast_cfg = ForecastConfig.model_validate(raw)
    until = trained_until(meta)
    where = f"{series} ({ckpt.parent.name})"
    if not allow_old_model:
        limit = max_model_age(forecast_cfg.max_model_age, tf)
        until = check_model_age(meta, clock, limit, where)
    log_path = series_path(data_dir, ex, sym, tf, kind=kind.store_kind)
    read_log(log_path, kind.schema)  # an unreadable log fails before any work
    # no log lock yet: the fetch (minutes on a slow exchange) holds only the data folder's lock
    # while it stores candles, so other runs of this series are not kept waiting
    new_candles, fetch_error = None, None
    if fetch:
        try:
            new_candles = _fetch(Path(data_dir), ex, sym, tf, exchange_url, clock)
            for extra_tf in kind.extra_timeframes(fcfg):
                _fetch(Path(data_dir), ex, sym, extra_tf, exchange_url, clock)
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
    check_trained_before(until, last, clock, where)  # a replay from before the model was trained
    reason = None
    if fetch_error is not None:
        reason = f"fetch from {ex} failed ({fetch_error})"
    else:
        reason = stale_reason(last, clock, tf, slack)
    extra = kind.extra_inputs(data_dir, ex, sym, fcfg)
    inp = Inputs(predictor, fcfg, tf, candles, extra, log_path)
    reason = reason or kind.stale_reason(inp)
    if reason is not None and not allow_stale:
        raise StaleDataError(
            f"{series}: stale data at {clock:%Y-%m-%d %H:%M} UTC: {reason}; nothing written "
            f"to {log_path} (fix the data source, or pass --allow-stale to log a forecast "
            "flagged stale)"
        )
    gap_table, window = kind.window(inp)
    gap = gap_reason(gap_table, int(meta["lookback"]), fcfg.gap_tolerance)
    if gap is not None and not allow_gaps:
        raise DataError(
            f"{series}: {gap}; nothing written to {log_path} ({kind.gap_hint}, or pass "
            "--allow-gaps to log a forecast flagged gap)"
        )
    if predictor.x_scaler is None:  # a series outside a pooled run's pool: its own scalers
        inp = replace(inp, predictor=outside_predictor(predictor, kind.features(inp)))
    base = _row_base(meta, ckpt, clock, last, reason, gap)
    rows = kind.predict_rows(inp, window, base)
    with log_lock(log_path, lock_timeout):  # read, change and replace the log as one step
        log, repeats = load_log(log_path, kind.schema)
        rows, calibration = calibrate_rows(inp, log, rows, ckpt.parent)  # ACI replays the log
        log, added = append_rows(log, rows, kind.schema)
        scored = 0
        if score:
            log, scored = kind.score(log, inp)
        if added or scored:
            write_parquet_atomic(log, log_path)
    notes = []
    if repeats:
        notes.append(
            f"forecast log {log_path}: {repeats} row(s) repeating the key (last_candle, run_id, "
            "step) of an earlier row were ignored, the first row of each key counts"
            + (" (and the repeats were dropped from the file)" if added or scored else "")
        )
    return ForecastResult(
        exchange=ex,
        symbol=sym,
        timeframe=tf,
        run_id=ckpt.parent.name,
        model=base["model"],
        log_path=log_path,
        last_candle=last,
        last_close=inp.last_close,
        rows=rows,
        added=added,
        stale=reason is not None,
        stale_reason=reason,
        made_at=clock,
        trained_until=until,
        gap_reason=gap,
        new_candles=new_candles,
        scored=scored,
        live=kind.live(log, inp) if score else {},
        notes=notes,
        calibration=calibration,
    )


def _row_base(
    meta: dict[str, Any],
    ckpt: Path,
    clock: pd.Timestamp,
    last: pd.Timestamp,
    stale: str | None,
    gap: str | None,
) -> dict[str, Any]:
    """The log columns every step of one forecast shares, price or volatility."""
    from cryptocast.evaluate.pooled import pooled_name

    model = str(meta.get("model_config", {}).get("name", "?"))
    return {
        "made_at": clock,
        "last_candle": last,
        "model": pooled_name(model) if meta.get("pool") else model,  # lstm@pooled
        "run_id": ckpt.parent.name,
        "config_hash": str(meta.get("config_hash", "")),
        "stale": stale is not None,
        "gap": gap is not None,
    }
