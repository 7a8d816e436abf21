"""Experiment tracking in MLflow: each ``train``, ``backtest`` and ``tune`` run as one MLflow run.

With ``tracking.enabled`` the API functions (and so the commands) log, the way qlib records its
runs: the resolved config as params (dotted keys, ``train.epochs``), every number of metrics.json
or summary.json as a metric (per series and model: ``BTC-USDT_1d/lstm/rmse``; lists such as the
loss history or the per-step errors as steps), and the run folder, report, plots, best.yaml and
checkpoint as artifacts. ``tracking.uri`` is a folder (default ``mlruns``: a local store, the
database ``mlruns/mlflow.db`` beside ``mlruns/artifacts/``) or any MLflow tracking URI.

MLflow is an optional extra (``pip install 'cryptocast[tracking]'``, ``mlflow-skinny``) imported
only when tracking is on; :func:`check_tracking` runs before any work, so a missing package or an
unwritable folder fails in a second, not after a two-hour grid. See docs/tracking.md.
"""

from __future__ import annotations

import json
import logging
import math
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptocast.errors import ConfigError, CryptocastError

if TYPE_CHECKING:
    from cryptocast.config.schema import Config
    from cryptocast.tune.study import TuneResult

TRACKING_INSTALL = "pip install 'cryptocast[tracking]'"
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")  # http:, sqlite:, file:, databricks (not C:)
_BAD_CHARS = re.compile(r"[^\w\-. /:]")  # what MLflow accepts in a metric or param name
_MAX_NAME, _MAX_VALUE = 250, 6000  # MLflow's limits on a name and a param value
#: identity columns of a summary.json record: they name the metric, they are not one
_RECORD_KEYS = ("symbol", "timeframe", "model")


def tracking_uri(uri: str) -> str:
    """The MLflow tracking URI for ``tracking.uri``: a folder becomes its local SQLite store.

    MLflow 3 keeps its plain file store in maintenance mode (refused unless
    ``MLFLOW_ALLOW_FILE_STORE=true``), so a folder holds ``mlflow.db`` and ``artifacts/``; a URI
    with a scheme (``http://``, ``sqlite:///``, ``file:///``, ``databricks``) is used as given.
    """
    if uri == "databricks" or _SCHEME.match(uri):
        return uri
    return f"sqlite:///{(Path(uri).expanduser().resolve() / 'mlflow.db').as_posix()}"


def _local_folder(uri: str) -> Path | None:
    return None if uri == "databricks" or _SCHEME.match(uri) else Path(uri).expanduser()


def check_tracking(cfg: Config) -> None:
    """Before any work: MLflow is installed and a local store's folder is writable.

    Raises:
        ConfigError: tracking is on and mlflow is not installed (names the extra to install).
        StorageError: the local store's folder cannot be written.
    """
    if not cfg.tracking.enabled:
        return
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise ConfigError(
            f"tracking.enabled needs MLflow, which is not installed: {TRACKING_INSTALL} "
            "(or set tracking.enabled=false)"
        ) from None
    folder = _local_folder(cfg.tracking.uri)
    if folder is not None:
        from cryptocast.config.names import check_writable_dir

        check_writable_dir(folder, "tracking.uri")


# ---- what is logged ----


def config_params(cfg: Config) -> dict[str, str]:
    """The resolved config as MLflow params: one per leaf, named by its dotted key."""
    out: dict[str, str] = {}

    def walk(value: Any, key: str) -> None:
        if isinstance(value, dict) and value:
            for k, v in value.items():
                walk(v, f"{key}.{k}" if key else str(k))
            return
        text = value if isinstance(value, str) else json.dumps(value)
        out[_name(key)] = text[:_MAX_VALUE]

    walk(cfg.to_dict(), "")
    return out


def numbers(obj: Any, prefix: str = "", step: int = 0) -> Iterator[tuple[str, float, int]]:
    """Every finite number in a JSON tree as ``(dotted name, value, step)``.

    A list of numbers (per-step errors) or of records (the loss history) becomes steps of one
    metric: the step is a record's ``epoch`` or the position in the list. Booleans, strings and
    non-finite values are not metrics and are left out.
    """
    if isinstance(obj, bool) or obj is None:
        return
    if isinstance(obj, (int, float)):
        if math.isfinite(obj):
            yield prefix, float(obj), step
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from numbers(v, f"{prefix}.{k}" if prefix else str(k), step)
        return
    if isinstance(obj, list):
        for i, item in enumerate(obj):
            at = item.get("epoch", i) if isinstance(item, dict) else i
            row = (
                {k: v for k, v in item.items() if k != "epoch"} if isinstance(item, dict) else item
            )
            yield from numbers(row, prefix, int(at) if isinstance(at, int) else i)


def train_metrics(metrics: dict[str, Any]) -> list[tuple[str, float, int]]:
    """metrics.json of a run: ``test.rmse``, ``best_epoch``, ``history.val_loss`` per epoch..."""
    return [(_name(k), v, s) for k, v, s in numbers(metrics)]


def backtest_metrics(summary: dict[str, Any]) -> list[tuple[str, float, int]]:
    """summary.json's results: ``{symbol}_{timeframe}/{model}/{metric}`` for every record."""
    from cryptocast.config.names import symbol_slug

    out = []
    for rec in summary.get("results", []):
        head = f"{symbol_slug(rec['symbol'])}_{rec['timeframe']}/{rec['model']}/"
        rest = {k: v for k, v in rec.items() if k not in _RECORD_KEYS}
        out += [(_name(head + k), v, s) for k, v, s in numbers(rest)]
    return out


def _name(key: str) -> str:
    return _BAD_CHARS.sub("_", key)[:_MAX_NAME]


# ---- logging one run ----


def log_train(cfg: Config, run_dir: Path, metrics: dict[str, Any]) -> str | None:
    """Log a ``train`` run: config, metrics.json, and the run folder (checkpoint included)."""
    if not cfg.tracking.enabled:
        return None
    tags = {"cryptocast.command": "train", "cryptocast.run_dir": str(run_dir)}
    folders = [(Path(run_dir), "run")]
    return _log_run(cfg, run_dir.name, tags, train_metrics(metrics), {}, folders)


def log_backtest(cfg: Config, summary: dict[str, Any], report_dir: Path | None) -> str | None:
    """Log a ``backtest``: config, every metric of summary.json, the report folder."""
    if not cfg.tracking.enabled:
        return None
    name = f"backtest-{cfg.output.name or cfg.model.name}"
    tags = {"cryptocast.command": "backtest", "cryptocast.report_dir": str(report_dir)}
    if failed := summary.get("failed_jobs"):  # a partial report (exit 8) is logged too
        tags["cryptocast.failed_jobs"] = str(len(failed))
    folders = [(Path(report_dir), "report")] if report_dir is not None else []
    return _log_run(cfg, name, tags, backtest_metrics(summary), {}, folders)


def log_tune(cfg: Config, result: TuneResult) -> str | None:
    """Log a ``tune`` run: config, best params and score, every trial's score by trial number,
    best.yaml and the history plot."""
    if not cfg.tracking.enabled:
        return None
    metric = cfg.tune.metric
    values = [(f"trial/{metric}", v, n) for n, v in _trial_values(result)]
    if result.best_value is not None:
        values.append((f"best/{metric}", float(result.best_value), 0))
    values += [(f"trials/{state}", float(n), 0) for state, n in result.counts.items()]
    params = {_name(f"best.{k}"): json.dumps(v) for k, v in result.best_params.items()}
    tags = {"cryptocast.command": "tune", "cryptocast.study": result.study_name}
    files = [p for p in (result.best_config, result.plot) if p is not None]
    return _log_run(cfg, f"tune-{result.study_name}", tags, values, params, [], files)


def _trial_values(result: TuneResult) -> list[tuple[int, float]]:
    """(trial number, score) of every complete trial in the study, read back from its storage."""
    import optuna
    from optuna.trial import TrialState

    study = optuna.load_study(study_name=result.study_name, storage=result.storage)
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return [(t.number, float(t.value)) for t in trials if t.value is not None]


@contextmanager
def _quiet() -> Iterator[None]:
    """MLflow, alembic and SQLAlchemy chatter (INFO lines, deprecation warnings) stays off
    stderr: a cron job mails any output."""
    loggers = [logging.getLogger(n) for n in ("mlflow", "alembic", "sqlalchemy")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _log_run(
    cfg: Config,
    run_name: str,
    tags: dict[str, str],
    metrics: list[tuple[str, float, int]],
    params: dict[str, str],
    folders: list[tuple[Path, str]],
    files: list[Path] | None = None,
) -> str:
    """One MLflow run; returns its id.

    Raises:
        CryptocastError: MLflow refused or could not be reached (what was written stays).
    """
    from cryptocast.training.runs import package_versions

    uri = tracking_uri(cfg.tracking.uri)
    versions = {f"version.{k}": v for k, v in package_versions().items()}
    all_tags = {**tags, "cryptocast.config_hash": cfg.hash(), **versions, **cfg.tracking.tags}
    try:
        with _quiet():
            return _write(cfg, uri, run_name, all_tags, metrics, params, folders, files or [])
    except CryptocastError:
        raise
    except Exception as err:  # MlflowException, OSError, a refused connection, ...
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CryptocastError(
            f"logging to MLflow at {uri} failed ({reason}); the run's own files are written, "
            "check tracking.uri or set tracking.enabled=false"
        ) from None


def _write(cfg, uri, run_name, tags, metrics, params, folders, files) -> str:
    import time

    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp_id = _experiment(client, cfg.tracking.experiment, _local_folder(cfg.tracking.uri))
    run = client.create_run(exp_id, run_name=run_name, tags=tags)
    run_id = run.info.run_id
    try:
        now = int(time.time() * 1000)
        items = [Param(k, v) for k, v in {**config_params(cfg), **params}.items()]
        for i in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
            client.log_batch(run_id, params=items[i : i + 100])
        points = [Metric(k, v, now, s) for k, v, s in metrics]
        for i in range(0, len(points), 1000):  # and at most 1000 metrics
            client.log_batch(run_id, metrics=points[i : i + 1000])
        if cfg.tracking.artifacts:
            for folder, where in folders:
                if folder.is_dir():
                    client.log_artifacts(run_id, str(folder), where)
            for path in files:
                client.log_artifact(run_id, str(path))
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id)
    return run_id


def _experiment(client: Any, name: str, folder: Path | None) -> str:
    """The experiment's id, created on first use (in a local store, with its artifacts in the
    store's folder rather than MLflow's default ``./mlartifacts`` of the working directory)."""
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    where = (folder.resolve() / "artifacts").as_uri() if folder is not None else None
    try:
        return client.create_experiment(name, artifact_location=where)
    except Exception:  # another process created it in the meantime
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id
