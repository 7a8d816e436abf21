"""The daily forecast job."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptocast.api.runs import Run, _latest_run

if TYPE_CHECKING:
    from cryptocast.api.common import ConfigLike, Overrides, PathLike
    from cryptocast.forecasting.result import ForecastResult


def forecast(
    run: PathLike | Run | None = None,
    *,
    config: ConfigLike = None,
    overrides: Overrides = None,
    data_dir: PathLike = "data",
    fetch: bool = True,
    exchange_url: str | None = None,
    allow_stale: bool = False,
    allow_old_model: bool = False,
    allow_gaps: bool = False,
    score: bool = False,
    timeframe: str | None = None,
    grace: str | None = None,
    now: Any = None,
    lock_timeout: float = 10.0,
) -> ForecastResult:
    """Predict the next ``horizon`` candles with a trained run and append them to the forecast
    log (one series of ``cryptocast forecast``). Rerunning for the same candle adds nothing.

    Args:
        run: a run folder (``runs/NAME-TIMESTAMP``), its checkpoint file, or a :class:`Run`.
        config: instead of ``run``: use the newest completed run trained from this config
            (a YAML path or ``Config``) plus ``overrides``.
        overrides: ``section.key=value`` strings for ``config``.
        data_dir: the data folder (candles in, forecast log out).
        fetch: fetch new candles first (False: use the stored candles, ``--no-fetch``).
        exchange_url: base URL for the fetch (a mirror or a fake exchange).
        allow_stale: forecast from old data anyway; the rows are flagged stale.
        allow_old_model: forecast with a model older than ``forecast.max_model_age``.
        allow_gaps: forecast from a window spanning a gap; the rows are flagged gap.
        score: also fill realised closes of past forecasts and compute live accuracy.
        timeframe: the timeframe you expect; must equal the checkpoint's.
        grace: how long after a candle closed it may be missing (e.g. ``"30min"``).
        now: the clock (a UTC date/time string or Timestamp; default ``$CRYPTOCAST_NOW`` or the
            wall clock), to replay history.
        lock_timeout: seconds (finite, >= 0) to wait for another process writing the same log;
            the lock is held only for the log write, not during the fetch.

    Returns:
        A ``ForecastResult``: ``rows`` (one row per step: target_time, predicted_close,
        predicted_return, ...), the log path, staleness and gap flags, live accuracy.

    Raises:
        ConfigError: neither or both of ``run`` and ``config``, an invalid clock or config, or a
            negative or NaN ``lock_timeout``.
        CheckpointError: no completed run, a corrupt checkpoint, one copied in from another
            run, a timeframe/feature mismatch, or a model trained past the forecast's origin.
        StaleDataError: the fetch failed or the data is stale (and not ``allow_stale``).
        ModelTooOldError: the model is older than ``forecast.max_model_age``.
        DataError: the window spans a gap (and not ``allow_gaps``).
        LockedError: another process holds the log past ``lock_timeout``.
    """
    from cryptocast.errors import ConfigError
    from cryptocast.forecasting.job import forecast_series

    if (run is None) == (config is None):
        raise ConfigError(
            "nothing to forecast; pass run=runs/NAME-TIMESTAMP or config=configs/X.yaml"
            if run is None
            else "pass run or config, not both"
        )
    forecast_cfg = None
    if config is not None:
        run_dir, cfg = _latest_run(config, overrides)
        forecast_cfg = cfg.forecast
    else:
        run_dir = run.path if isinstance(run, Run) else Path(run)
    return forecast_series(
        run_dir,
        Path(data_dir),
        fetch=fetch,
        exchange_url=exchange_url,
        allow_stale=allow_stale,
        allow_old_model=allow_old_model,
        allow_gaps=allow_gaps,
        forecast_cfg=forecast_cfg,
        timeframe=timeframe,
        now=now,
        grace=grace,
        score=score,
        lock_timeout=lock_timeout,
    )
