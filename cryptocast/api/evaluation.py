"""The walk-forward backtest of every model beside the baselines."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptocast.api.common import _overrides, as_names, load_config, with_settings
from cryptocast.api.tracking import check_tracking, log_backtest

if TYPE_CHECKING:
    import pandas as pd

    from cryptocast.api.common import ConfigLike, Overrides, PathLike
    from cryptocast.config.schema import Config


@dataclass(frozen=True)
class BacktestResult:
    """A walk-forward backtest: what ``cryptocast backtest`` prints and writes to its report.

    Attributes:
        config: the resolved config the backtest ran (its ``backtest`` section included).
        summary: summary.json's content: config hash, models, test period, data ranges, fold
            info and ``results`` (one record per symbol, timeframe and model).
        forecasts: every forecast, one row per origin and step (forecasts.parquet).
        equity: the trading simulation's equity curves (equity.parquet), or None.
        report_dir: the report folder written, or None when none was.
        jobs_dir: where the finished jobs are kept for a rerun (``evaluate.jobstore``), or None;
            ``save()`` removes it once the report it writes is complete.
    """

    config: Config
    summary: dict[str, Any]
    forecasts: pd.DataFrame
    equity: pd.DataFrame | None
    report_dir: Path | None = None
    jobs_dir: Path | None = None

    @property
    def records(self) -> pd.DataFrame:
        """The results table: one row per (symbol, timeframe, model), one column per metric."""
        import pandas as pd

        return pd.DataFrame(self.summary["results"])

    def save(self, report_dir: PathLike | None = None) -> Path:
        """Write the report folder (report.md, summary.json, forecasts, plots) atomically; with
        ``tracking.enabled``, also log it as an MLflow run (docs/tracking.md).

        Args:
            report_dir: where to (default: the config's ``backtest.report_dir``).

        Returns:
            The report folder.

        Raises:
            ConfigError: the folder exists and is not a cryptocast report.
            CryptocastError: MLflow refused the run (the report stays written).
        """
        from cryptocast.evaluate.report import write_report

        target = report_dir if report_dir is not None else self.config.backtest.report_dir
        path = write_report(target, self.forecasts, self.summary, self.equity)
        if self.jobs_dir is not None and not self.summary.get("failed_jobs"):
            from cryptocast.evaluate.jobstore import JobStore

            JobStore(self.jobs_dir).clear()  # complete: nothing left to redo
        log_backtest(self.config, self.summary, path)  # tracking follows what is written
        return path


def backtest(
    config: ConfigLike = None,
    overrides: Overrides = None,
    *,
    data_dir: PathLike = "data",
    models: str | Sequence[str] | None = None,
    symbols: str | Sequence[str] | None = None,
    timeframes: str | Sequence[str] | None = None,
    test_start: str | None = None,
    test_end: str | None = None,
    fold_length: int | None = None,
    window: str | None = None,
    retrain_every: int | None = None,
    horizon: int | None = None,
    workers: int | None = None,
    metrics: str | Sequence[str] | None = None,
    report_dir: PathLike | None = None,
    write: bool = True,
    executor: str = "local",
    ray_address: str | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    reuse: bool | None = None,
) -> BacktestResult:
    """Walk-forward backtest of every model beside the naive baselines (``cryptocast backtest``).

    Per fold, scalers and models are fit on past data only, the fold is forecast, and every
    model is scored (error metrics, skill, Diebold-Mariano tests, a cost-aware trading
    simulation). The keyword settings override the config's ``backtest`` keys, like the CLI's
    flags; None leaves the config's value.

    Args:
        config: a ``Config``, a YAML path or None for the defaults.
        overrides: ``section.key=value`` strings (``--set``).
        data_dir: the data folder holding the candles.
        models: model names (a list or ``"lstm,persistence"``); ``backtest.models``.
        symbols: symbols to test (one or a list); ``backtest.symbols``.
        timeframes: timeframes to test; ``backtest.timeframes``.
        test_start: first forecast date; ``backtest.test_start``.
        test_end: end of the test period; ``backtest.test_end``.
        fold_length: candles per fold (replaces a config's ``backtest.fold_period``).
        window: ``expanding`` or ``rolling``; ``backtest.window``.
        retrain_every: folds per retrain; ``backtest.retrain_every``.
        horizon: candles ahead; ``features.horizon``.
        workers: parallel job processes; ``backtest.workers``.
        metrics: the results columns to keep (``backtest.metrics``).
        report_dir: report folder; ``backtest.report_dir``.
        write: write the report folder (False: only return the results; ``save()`` later).
            With ``tracking.enabled`` the run is logged to MLflow when its report is written.
        executor: ``local`` (worker processes) or ``ray``.
        ray_address: the Ray cluster for ``executor="ray"`` (None: ``RAY_ADDRESS`` or local).
        on_event: sees the plan, each fold and each job as progress events (dicts).
        reuse: keep each finished job beside the report folder (``.NAME.jobs``) until a complete
            report is written, and reuse the jobs kept there by a failed or interrupted run of
            the same config, data and code (None: when ``write``).

    Returns:
        A ``BacktestResult`` (summary, forecasts, equity, ``records`` and the report folder).

    Raises:
        ConfigError: an invalid config or setting, unknown model or metric, a test period
            outside the data, folds that do not fit.
        DataError: no candles or feature rows for a series.
        StorageError: the report folder is not writable (checked before the work).
        PartialFailure: some jobs failed (exit 8): the report is written with a "Failed jobs"
            section (``write``); ``done`` is the ``BacktestResult`` of the finished jobs and
            ``failed`` names each failed job and its error.
        CryptocastError: every job failed (the first failure, prefixed with its job name); or
            ``tracking.enabled`` and MLflow refused the run (the report stays).
    """
    from cryptocast.config.names import check_writable_dir
    from cryptocast.errors import ConfigError
    from cryptocast.evaluate.backtest import run_backtest, summarise, validate
    from cryptocast.executor import EXECUTORS

    if executor not in EXECUTORS:
        raise ConfigError(f"executor {executor!r}: use one of {', '.join(EXECUTORS)}")
    items = _overrides(overrides)
    cfg = load_config(config, items)
    settings = {
        "backtest.models": ("models", as_names(models, commas=True)),
        "backtest.symbols": ("symbols", as_names(symbols)),
        "backtest.timeframes": ("timeframes", as_names(timeframes)),
        "backtest.report_dir": ("report_dir", None if report_dir is None else str(report_dir)),
        "backtest.test_start": ("test_start", test_start),
        "backtest.test_end": ("test_end", test_end),
        "backtest.fold_length": ("fold_length", fold_length),
        "backtest.window": ("window", window),
        "backtest.retrain_every": ("retrain_every", retrain_every),
        "features.horizon": ("horizon", horizon),
        "backtest.workers": ("workers", workers),
        "backtest.metrics": ("metrics", as_names(metrics, commas=True)),
    }
    cfg = with_settings(cfg, settings, items)  # a new Config when any setting is given
    if fold_length is not None:  # an explicit fold_length beats a config's fold_period
        cfg.backtest.fold_period = None
    data_dir = Path(data_dir)
    validate(cfg, data_dir)  # names, metrics, series: before data, torch or any output
    if write:
        check_writable_dir(Path(cfg.backtest.report_dir), "report_dir")
    check_tracking(cfg)
    from cryptocast.errors import PartialFailure
    from cryptocast.evaluate.jobstore import jobs_folder

    keep = write if reuse is None else reuse
    jobs_dir = jobs_folder(cfg.backtest.report_dir) if keep else None
    try:
        results = run_backtest(cfg, data_dir, on_event, executor, ray_address, jobs_dir)
        partial = None
    except PartialFailure as err:  # the finished jobs still make a (partial) report
        results, partial = err.done, err
    failed = partial.failed if partial is not None else ()
    summary, forecasts, equity = summarise(cfg, results, failed)
    result = BacktestResult(cfg, summary, forecasts, equity, jobs_dir=jobs_dir)
    if write:
        result = BacktestResult(cfg, summary, forecasts, equity, result.save(), jobs_dir)
    if partial is None:
        return result
    redo = "redo only those" if jobs_dir is not None else "redo them"
    raise PartialFailure(
        f"{partial}; the report lists them under 'Failed jobs'; rerun the same command to {redo}",
        done=result,
        failed=failed,
    )


# ---- forecast ----
