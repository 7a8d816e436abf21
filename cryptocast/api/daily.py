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
    symbol: str | None = None,
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
        symbol: the series of a pooled run (``backtest.pooled``) to forecast; needed when it
            evaluates several (:func:`forecast_each` forecasts each). A per-series run forecasts
            its own series only.

    Returns:
        A ``ForecastResult``: ``rows`` (one row per step: target_time, predicted_close,
        predicted_return, ...), the log path, staleness and gap flags, live accuracy.

    Raises:
        ConfigError: neither or both of ``run`` and ``config``, an invalid clock or config, a
            negative or NaN ``lock_timeout``, or a ``symbol`` the run does not forecast.
        CheckpointError: no completed run, a corrupt checkpoint, one copied in from another
            run, a timeframe/feature mismatch, or a model trained past the forecast's origin.
        StaleDataError: the fetch failed or the data is stale (and not ``allow_stale``).
        ModelTooOldError: the model is older than ``forecast.max_model_age``.
        DataError: the window spans a gap (and not ``allow_gaps``).
        LockedError: another process holds the log past ``lock_timeout``.
    """
    from cryptocast.forecasting.job import forecast_series

    run_dir, forecast_cfg = _run_of(run, config, overrides)
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
        symbol=symbol,
    )


def forecast_each(
    run: PathLike | Run | None = None,
    *,
    config: ConfigLike = None,
    overrides: Overrides = None,
    symbols: list[str] | None = None,
    **options: Any,
) -> list[ForecastResult]:
    """:func:`forecast` for every series a run forecasts (``cryptocast forecast``): a pooled
    run's evaluated symbols, each through the same job with its own fetch, checks, lock and log;
    a per-series run's own series. The run (``run``, or the newest of ``config``) is picked once.

    Args:
        run: as for :func:`forecast`.
        config: as for :func:`forecast`.
        overrides: as for :func:`forecast`.
        symbols: forecast these series instead (``--symbol``; each checked as ``symbol`` is).
        **options: the other keyword arguments of :func:`forecast` (``data_dir``, ``fetch``,
            ``now``, ``allow_stale``, ...).

    Returns:
        One ``ForecastResult`` per series, in the run's order.

    Raises:
        PartialFailure: some of several series failed; ``done`` holds the other results and
            ``failed`` the ``(symbol, error)`` pairs (each error as :func:`forecast` raises it).
        CryptocastError: the run could not be found or read, or its only series failed.
    """
    from cryptocast.errors import CryptocastError, PartialFailure
    from cryptocast.forecasting.job import checkpoint_file, forecast_series
    from cryptocast.forecasting.pooled import run_symbols

    run_dir, forecast_cfg = _run_of(run, config, overrides)
    data_dir = Path(options.pop("data_dir", "data"))
    done, failed = [], []
    for s in run_symbols(checkpoint_file(run_dir), symbols):
        try:
            res = forecast_series(run_dir, data_dir, forecast_cfg=forecast_cfg, symbol=s, **options)
        except CryptocastError as err:
            failed.append((s, err))
            continue
        done.append(res)
    if failed and not done and len(failed) == 1:
        raise failed[0][1]
    if failed:
        names = ", ".join(str(s or run_dir) for s, _ in failed)
        raise PartialFailure(
            f"{len(failed)} of {len(failed) + len(done)} series of {Path(run_dir).name} failed "
            f"({names})",
            done=done,
            failed=failed,
        )
    return done


def _run_of(run: Any, config: ConfigLike, overrides: Overrides) -> tuple[Path, Any]:
    """(run folder, the forecast settings to use: ``config``'s, or None for the run's own)."""
    from cryptocast.errors import ConfigError

    if (run is None) == (config is None):
        raise ConfigError(
            "nothing to forecast; pass run=runs/NAME-TIMESTAMP or config=configs/X.yaml"
            if run is None
            else "pass run or config, not both"
        )
    if config is not None:
        run_dir, cfg = _latest_run(config, overrides)
        return run_dir, cfg.forecast
    return (run.path if isinstance(run, Run) else Path(run)), None
