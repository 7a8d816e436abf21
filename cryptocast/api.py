"""The public Python API: every stage of the pipeline as a plain function.

    from cryptocast import fetch, build_features, train, backtest, forecast, load_run, load_config

Each function runs the same library code as its ``cryptocast`` command (the CLI calls these
functions), so a notebook and a cron job get the same candles, features, runs, reports and
forecast logs. Nothing here prints; results come back as DataFrames or small result objects, and
failures raise the library's exceptions (:mod:`cryptocast.errors`, each a ``CryptocastError``
whose ``exit_code`` is the CLI's exit status).

Functions that read a config take ``config`` (a :class:`~cryptocast.config.schema.Config`, a YAML
path, or None for the defaults) and ``overrides``, a list of ``section.key=value`` strings (the
CLI's ``--set``). Heavy dependencies (pandas, torch, ccxt) are imported when a function runs, not
when this module is imported. See docs/api.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from cryptocast.config.schema import Config
    from cryptocast.errors import CryptocastError
    from cryptocast.forecasting.result import ForecastResult
    from cryptocast.training.inference import Predictor

    ConfigLike = Config | str | Path | None  # a Config, a YAML path, or None (the defaults)
    Overrides = Sequence[str] | str | None  # ``section.key=value`` strings, like ``--set``
    PathLike = str | Path

__all__ = [
    "BacktestResult",
    "Run",
    "TrainResult",
    "backtest",
    "build_features",
    "fetch",
    "fetch_records",
    "forecast",
    "load_config",
    "load_run",
    "train",
]


# ---- config ----
def load_config(config: ConfigLike = None, overrides: Overrides = None) -> Config:
    """Load and validate a config, the way every command reads ``--config`` and ``--set``.

    Args:
        config: a YAML file (``configs/tiny.yaml``), a ``Config`` (returned as is when there
            are no overrides), or None for the built-in defaults.
        overrides: ``section.key=value`` strings applied on top, parsed like ``--set`` (YAML
            scalars and lists: ``"train.epochs=1"``, ``"backtest.models=[lstm, persistence]"``).
            A single string counts as one override.

    Returns:
        The validated, typed ``Config``.

    Raises:
        ConfigError: the file is missing or not YAML, an override is malformed, or a value is
            invalid (the message names the file or the override that set it).
    """
    from cryptocast.config.schema import (
        Config,
        apply_overrides,
        config_from_dict,
        override_sources,
    )
    from cryptocast.config.schema import load_config as load_yaml

    items = _overrides(overrides)
    if isinstance(config, Config):
        if not items:
            return config
        raw = apply_overrides(config.to_dict(), items)
        return config_from_dict(raw, "config", override_sources(items))
    return load_yaml(config, items)


def _overrides(overrides: Overrides) -> list[str]:
    if overrides is None:
        return []
    if isinstance(overrides, str):
        return [overrides]
    return [str(o) for o in overrides]


def _names(value: str | Sequence[str] | None, commas: bool = False) -> list[str] | None:
    """None, one name, or several; ``commas``: ``"lstm,persistence"`` is two names."""
    if value is None:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()] if commas else [value]
    return [str(v) for v in value]


def _source(config: ConfigLike) -> str:
    """How errors name where a config came from (the CLI's wording for paths and defaults)."""
    if config is None:
        return "defaults"
    return str(config) if isinstance(config, (str, Path)) else "config"


def _with_settings(
    cfg: Config, settings: dict[str, tuple[str, Any]], overrides: list[str]
) -> Config:
    """``cfg`` with ``{dotted key: (label, value)}`` applied (None values skipped), validated by
    the same typed config; an invalid value's error names its label (a keyword or an option)."""
    from cryptocast.config.schema import config_from_dict, override_sources

    if all(value is None for _, value in settings.values()):
        return cfg
    raw = cfg.to_dict()
    blame = override_sources(overrides)
    for key, (label, value) in settings.items():
        if value is None:
            continue
        section, name = key.split(".")
        raw[section][name] = value
        blame[key] = label
    return config_from_dict(raw, "config", blame)


# ---- fetch ----
def fetch_records(
    symbols: str | Sequence[str] | None = None,
    timeframes: str | Sequence[str] | None = None,
    *,
    exchange: str = "binance",
    since: str | None = "2018-01-01",
    until: str | None = None,
    data_dir: PathLike = "data",
    exchange_url: str | None = None,
    import_from: PathLike | None = None,
    overwrite: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[list[dict[str, Any]], CryptocastError | None]:
    """What :func:`fetch` does, without raising for failed series: the building block the CLI
    prints its table from before it raises.

    Args:
        The same as :func:`fetch`.

    Returns:
        ``(records, error)``: one dict per series (exchange, symbol, timeframe, new_candles,
        requests and error for a download, then the integrity report's keys), and the error
        :func:`fetch` raises for failed series (None when every series worked).

    Raises:
        The errors :func:`fetch` raises up front (bad options, unreadable import files).
    """
    from cryptocast.errors import PartialFailure

    data_dir = Path(data_dir)
    syms, tfs = _names(symbols), _names(timeframes)
    if import_from is not None:
        from cryptocast.data.importers import import_path

        reports = import_path(data_dir, Path(import_from), exchange, syms, tfs, overwrite=overwrite)
        return [{"exchange": exchange, **r} for r in reports], None

    from cryptocast.config.schema import DEFAULT_SYMBOLS, DEFAULT_TIMEFRAMES
    from cryptocast.data.fetch import fetch_many

    reports = fetch_many(
        data_dir,
        exchange,
        syms or list(DEFAULT_SYMBOLS),
        tfs or list(DEFAULT_TIMEFRAMES),
        since,
        until,
        exchange_url,
        progress,
    )
    records = [
        {"exchange": r.exchange, "symbol": r.symbol, "timeframe": r.timeframe,
         "new_candles": r.new_candles, "requests": r.requests, "error": r.error, **r.integrity}
        for r in reports
    ]  # fmt: skip
    failed = [r for r in reports if r.error]
    error: CryptocastError | None = None
    if failed and len(failed) == len(reports) and failed[0].error_type is not None:
        # nothing worked: the first cause, with its own exit code (e.g. 2 for an unknown symbol)
        error = failed[0].error_type(failed[0].error)
    elif failed:
        names = ", ".join(f"{r.symbol} {r.timeframe}" for r in failed)
        error = PartialFailure(
            f"{len(failed)} of {len(reports)} series failed ({names}); fix the cause and rerun fetch"
        )
    return records, error


def fetch(
    symbols: str | Sequence[str] | None = None,
    timeframes: str | Sequence[str] | None = None,
    *,
    exchange: str = "binance",
    since: str | None = "2018-01-01",
    until: str | None = None,
    data_dir: PathLike = "data",
    exchange_url: str | None = None,
    import_from: PathLike | None = None,
    overwrite: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> pd.DataFrame:
    """Download candles into the Parquet store, or import local candle files (``cryptocast fetch``).

    A download resumes after the last stored candle, never stores the still-open candle and
    retries network faults; a failing series does not stop the others (their progress is kept).

    Args:
        symbols: market symbols such as ``"BTC/USDT"`` (one string or a list). Download default:
            the config's default symbols; import default: what the file names say.
        timeframes: candle timeframes such as ``"1d"`` (one or a list); defaults as ``symbols``.
        exchange: ccxt exchange id; for an import, the store folder the series go to.
        since: first candle wanted (UTC date or date time); download only.
        until: stop before this UTC date/time (None: up to now); download only.
        data_dir: the data folder (candles, features, forecast logs).
        exchange_url: base URL the exchange's REST paths are appended to (a mirror or a fake).
        import_from: import this file or folder instead of downloading (Parquet in the store
            schema, freqtrade .feather/.json, cryptodatadownload CSV, Binance kline CSV/zip).
        overwrite: with ``import_from``, let the files replace stored candles that differ.
        progress: called as ``progress(series, done, total)`` while downloading.

    Returns:
        One row per series: exchange, symbol, timeframe, new_candles (plus requests and error
        for a download) and the integrity report (rows, first, last, gaps, missing,
        largest_gap, duplicates_dropped, zero_volume, ohlc_violations).

    Raises:
        ConfigError: unknown exchange, symbol or timeframe, or since >= until.
        DataError: an import file is unreadable or breaks a rule, or would change stored candles
            without ``overwrite``.
        ExchangeError: every series failed to download (the first failure's own type).
        PartialFailure: some series failed; the others were stored.
    """
    import pandas as pd

    records, error = fetch_records(
        symbols,
        timeframes,
        exchange=exchange,
        since=since,
        until=until,
        data_dir=data_dir,
        exchange_url=exchange_url,
        import_from=import_from,
        overwrite=overwrite,
        progress=progress,
    )
    if error is not None:
        raise error
    return pd.DataFrame(records)


# ---- features ----
def build_features(
    config: ConfigLike = None,
    overrides: Overrides = None,
    *,
    symbol: str | None = None,
    timeframe: str | None = None,
    exchange: str | None = None,
    data_dir: PathLike = "data",
    force: bool = False,
    trim: bool = False,
) -> pd.DataFrame:
    """The causal feature table of one stored series (``cryptocast features``), cached as Parquet.

    Args:
        config: the ``features`` section to use (and the default series): a ``Config``, a YAML
            path or None for the defaults.
        overrides: ``section.key=value`` strings (``--set``).
        symbol: the series' symbol (default: the config's ``data.symbol``).
        timeframe: the series' timeframe (default: ``data.timeframe``).
        exchange: the store folder (default: ``data.exchange``).
        data_dir: the data folder the candles were fetched into.
        force: rebuild even when the cached table is fresh.
        trim: keep only the rows from ``data.start`` up to ``data.end``, the table ``train``
            reads (``training.runs.load_feature_table``); default: every row.

    Returns:
        One row per candle after the indicators' warm-up: timestamp, OHLCV, the feature columns,
        ``gap_before`` and the targets. ``attrs`` tell rows_in, warmup_dropped, cached and path.

    Raises:
        ConfigError: an invalid config, indicator, symbol or timeframe.
        DataError: no candles stored for the series, or no rows in ``data.start``..``data.end``.
    """
    from cryptocast.config.timeframes import symbol_slug, validate_timeframe
    from cryptocast.features.table import build_features as build
    from cryptocast.features.table import indicator_specs

    cfg = load_config(config, overrides)
    indicator_specs(cfg.features)  # an unknown indicator or parameter stops here, before any work
    exchange = exchange or cfg.data.exchange
    symbol = symbol or cfg.data.symbol
    timeframe = timeframe or cfg.data.timeframe
    symbol_slug(symbol)
    validate_timeframe(timeframe)
    table = build(Path(data_dir), exchange, symbol, timeframe, cfg.features, force=force)
    if not trim:
        return table
    from cryptocast.config.schema import config_from_dict
    from cryptocast.training.runs import load_feature_table

    raw = cfg.to_dict()
    raw["data"].update(exchange=exchange, symbol=symbol, timeframe=timeframe)
    return load_feature_table(config_from_dict(raw), Path(data_dir))


# ---- train ----
@dataclass(frozen=True)
class TrainResult:
    """A trained run: its folder (``runs/{name}-{timestamp}``), metrics.json and config.

    ``metrics["test"]`` holds the held-out test scores; ``load()`` opens the run for prediction.
    """

    run_dir: Path
    metrics: dict[str, Any]
    config: Config

    def load(self) -> Run:
        """The run as :func:`load_run` returns it (config, metrics and a ``Predictor``)."""
        return load_run(self.run_dir)


def train(
    config: ConfigLike = None,
    overrides: Overrides = None,
    *,
    data_dir: PathLike = "data",
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    on_batch: Callable[[int, int, int], None] | None = None,
) -> TrainResult:
    """Train ``model.name`` on ``data``'s series and write a run folder (``cryptocast train``).

    The validated run fits on the train segment, picks the epoch on validation and scores the
    test segment; with ``train.refit_all`` (default) the checkpoint then holds a refit on every
    stored row. Like the CLI, this sets torch's thread count for the process
    (``train.num_threads``, or what the machine's thread plan picks).

    Args:
        config: a ``Config``, a YAML path or None for the defaults.
        overrides: ``section.key=value`` strings (``--set``), e.g. ``["train.epochs=1"]``.
        data_dir: the data folder holding the candles.
        on_epoch: called with each epoch's history row (epoch, train_loss, val_loss, lr, ...).
        on_batch: called as ``on_batch(epoch, batch, batches)`` after each training step.

    Returns:
        A ``TrainResult``: the run folder (under ``output.runs_dir``), its metrics and config.

    Raises:
        ConfigError: an invalid config, unknown model or device.
        DataError: no candles or feature rows for the series.
        StorageError: ``output.runs_dir`` is not writable (checked before the fit).
    """
    from cryptocast.config.schema import override_sources
    from cryptocast.models.registry import check_model_name

    cfg = load_config(config, overrides)  # dates, types, keys: before data or torch
    blame = override_sources(_overrides(overrides))
    source = blame.get("model.name", f"{_source(config)}: model.name")
    check_model_name(cfg.model.name, source)  # lists the registered names; imports no torch

    from cryptocast.evaluate.holdout import train_run
    from cryptocast.training.threads import apply_thread_plan

    plan = apply_thread_plan(1, cfg.train.num_threads)  # before anything below loads torch
    import torch

    torch.set_num_threads(plan.threads)
    result = train_run(cfg, Path(data_dir), on_epoch, on_batch)
    return TrainResult(run_dir=result.run_dir, metrics=result.metrics, config=cfg)


# ---- backtest ----
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
    """

    config: Config
    summary: dict[str, Any]
    forecasts: pd.DataFrame
    equity: pd.DataFrame | None
    report_dir: Path | None = None

    @property
    def records(self) -> pd.DataFrame:
        """The results table: one row per (symbol, timeframe, model), one column per metric."""
        import pandas as pd

        return pd.DataFrame(self.summary["results"])

    def save(self, report_dir: PathLike | None = None) -> Path:
        """Write the report folder (report.md, summary.json, forecasts, plots) atomically.

        Args:
            report_dir: where to (default: the config's ``backtest.report_dir``).

        Returns:
            The report folder.

        Raises:
            ConfigError: the folder exists and is not a cryptocast report.
        """
        from cryptocast.evaluate.report import write_report

        target = report_dir if report_dir is not None else self.config.backtest.report_dir
        return write_report(target, self.forecasts, self.summary, self.equity)


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
        executor: ``local`` (worker processes) or ``ray``.
        ray_address: the Ray cluster for ``executor="ray"`` (None: ``RAY_ADDRESS`` or local).
        on_event: sees the plan, each fold and each job as progress events (dicts).

    Returns:
        A ``BacktestResult`` (summary, forecasts, equity, ``records`` and the report folder).

    Raises:
        ConfigError: an invalid config or setting, unknown model or metric, a test period
            outside the data, folds that do not fit.
        DataError: no candles or feature rows for a series.
        StorageError: the report folder is not writable (checked before the work).
        CryptocastError: a job failed (the first failure, prefixed with its job name).
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
        "backtest.models": ("models", _names(models, commas=True)),
        "backtest.symbols": ("symbols", _names(symbols)),
        "backtest.timeframes": ("timeframes", _names(timeframes)),
        "backtest.report_dir": ("report_dir", None if report_dir is None else str(report_dir)),
        "backtest.test_start": ("test_start", test_start),
        "backtest.test_end": ("test_end", test_end),
        "backtest.fold_length": ("fold_length", fold_length),
        "backtest.window": ("window", window),
        "backtest.retrain_every": ("retrain_every", retrain_every),
        "features.horizon": ("horizon", horizon),
        "backtest.workers": ("workers", workers),
        "backtest.metrics": ("metrics", _names(metrics, commas=True)),
    }
    cfg = _with_settings(cfg, settings, items)  # a new Config when any setting is given
    if fold_length is not None:  # an explicit fold_length beats a config's fold_period
        cfg.backtest.fold_period = None
    data_dir = Path(data_dir)
    validate(cfg, data_dir)  # names, metrics, series: before data, torch or any output
    if write:
        check_writable_dir(Path(cfg.backtest.report_dir), "report_dir")
    results = run_backtest(cfg, data_dir, on_event, executor, ray_address)
    summary, forecasts, equity = summarise(cfg, results)
    result = BacktestResult(cfg, summary, forecasts, equity)
    if not write:
        return result
    return BacktestResult(cfg, summary, forecasts, equity, result.save())


# ---- forecast ----
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
        lock_timeout: seconds to wait for another process writing the same log.

    Returns:
        A ``ForecastResult``: ``rows`` (one row per step: target_time, predicted_close,
        predicted_return, ...), the log path, staleness and gap flags, live accuracy.

    Raises:
        ConfigError: neither or both of ``run`` and ``config``, or an invalid clock or config.
        CheckpointError: no completed run, a corrupt checkpoint or a timeframe/feature mismatch.
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


def _latest_run(config: ConfigLike, overrides: Overrides) -> tuple[Path, Config]:
    """(run folder, Config): the newest completed run trained from ``config`` + ``overrides``."""
    from cryptocast.config.schema import Config
    from cryptocast.forecasting.job import run_from_config
    from cryptocast.training.runs import latest_run

    items = _overrides(overrides)
    if not isinstance(config, Config):  # a path: the CLI's code path and wording
        return run_from_config(Path(config), items)  # type: ignore[arg-type]
    cfg = load_config(config, items)
    name = cfg.output.name or cfg.model.name
    source = f"the given config (hash {cfg.hash()})"
    return latest_run(Path(cfg.output.runs_dir), name, cfg.training_hash(), source), cfg


# ---- runs ----
@dataclass(frozen=True)
class Run:
    """A completed training run, opened for inspection and prediction.

    Attributes:
        path: the run folder (``runs/{name}-{timestamp}``).
        config: the resolved config it was trained from (config.yaml).
        metrics: metrics.json: loss history, best epoch, held-out ``test`` scores, ``deployed``.
        predictor: the checkpoint as a ``Predictor`` (model, scalers, feature list), the same
            prediction path the backtest and the forecast job use.
    """

    path: Path
    config: Config
    metrics: dict[str, Any]
    predictor: Predictor

    @property
    def name(self) -> str:
        """The run id, e.g. ``tiny-20240101-120000``."""
        return self.path.name

    @property
    def history(self) -> pd.DataFrame:
        """One row per epoch of the validated fit (train_loss, val_loss, lr, seconds, ...)."""
        import pandas as pd

        return pd.DataFrame(self.metrics.get("history") or [])


def load_run(
    run: PathLike | None = None, *, config: ConfigLike = None, overrides: Overrides = None
) -> Run:
    """Open a trained run folder: its config, metrics and a ``Predictor`` for its checkpoint.

    Args:
        run: the run folder written by :func:`train` (or its checkpoint.pt).
        config: instead of ``run``: the newest completed run trained from this config (YAML
            path or ``Config``) plus ``overrides``, the run ``forecast --config`` would use.
        overrides: ``section.key=value`` strings for ``config``.

    Returns:
        A :class:`Run` (path, config, metrics, predictor).

    Raises:
        ConfigError: neither or both of ``run`` and ``config``.
        CheckpointError: no such run, an unfinished run (no checkpoint) or a corrupt checkpoint.
    """
    import json

    from cryptocast.config.schema import config_from_dict
    from cryptocast.errors import CheckpointError, ConfigError
    from cryptocast.forecasting.job import checkpoint_file
    from cryptocast.training.inference import Predictor

    if (run is None) == (config is None):
        raise ConfigError("pass run=runs/NAME-TIMESTAMP or config=configs/X.yaml (one of them)")
    if config is not None:
        run, _ = _latest_run(config, overrides)
    ckpt = checkpoint_file(Path(run))  # type: ignore[arg-type]
    run_dir = ckpt.parent
    predictor = Predictor.from_checkpoint(ckpt)
    meta = predictor.meta or {}
    cfg_file = run_dir / "config.yaml"
    cfg = load_config(cfg_file) if cfg_file.is_file() else config_from_dict(meta.get("config", {}))
    metrics: dict[str, Any] = {}
    metrics_file = run_dir / "metrics.json"
    if metrics_file.is_file():
        try:
            metrics = json.loads(metrics_file.read_text())
        except ValueError as err:
            raise CheckpointError(f"{metrics_file}: not valid JSON ({err})") from None
    return Run(path=run_dir, config=cfg, metrics=metrics, predictor=predictor)
