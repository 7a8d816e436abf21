"""``cryptocast tune``: an Optuna study over ``tune.space``, scored on the tuning period only.

The driver asks Optuna for trials (TPE seeded by ``tune.seed`` and the trial number), runs each as one task on
an executor (:mod:`cryptocast.executor`: here, in worker processes, or one Ray task per trial) and
tells Optuna the result. The study lives in a database: SQLite under
``{output.runs_dir}/tune/{study}/study.db`` by default, so an interrupted study resumes where it
stopped (``load_if_exists``), or any SQLAlchemy URL (``--storage``) that several machines share.

Pruning (:mod:`cryptocast.tune.pruning`): with one local worker the trial runs in this process
and reports every fold's running score to Optuna's ``MedianPruner``. A trial running elsewhere
cannot reach the study, so it reads the same rule's thresholds from a board the driver updates
after every finished trial. At most ``tune.max_in_flight`` trials run at once, so TPE and the
pruner learn from finished trials while the rest wait. A searched ``features.*`` key gets its own
feature table (:mod:`cryptocast.tune.tables`); the database, the per-trial seeded sampler and the
runs that share a study are :mod:`cryptocast.tune.storage`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptocast.config.schema import Config
from cryptocast.errors import ConfigError, CryptocastError

TUNE_INSTALL = "pip install 'cryptocast[tune]'"
# may change between resumes
IDENTITY_EXCLUDED = ("trials", "timeout", "seed", "storage", "max_in_flight")


@dataclass
class TuneResult:
    """What the study holds after this run."""

    study_dir: Path
    storage: str
    study_name: str
    best_value: float | None
    best_params: dict[str, Any]
    best_config: Path | None
    plot: Path | None
    counts: dict[str, int]
    top: list[dict[str, Any]] = field(default_factory=list)  # best trials, best first
    period: dict[str, str] = field(default_factory=dict)


def import_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise ConfigError(
            f"cryptocast tune needs Optuna, which is not installed: {TUNE_INSTALL}"
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def study_name(cfg: Config) -> str:
    from cryptocast.config.timeframes import symbol_slug

    d = cfg.data
    return cfg.tune.study_name or f"{cfg.model.name}-{symbol_slug(d.symbol)}-{d.timeframe}"


def identity_hash(cfg: Config) -> str:
    """Hash of the config a study is made from, without what may change between resumes."""
    from cryptocast.config.schema import config_from_dict

    raw = cfg.to_dict()
    for key in IDENTITY_EXCLUDED:
        raw["tune"].pop(key)
    return config_from_dict(raw).hash()


def in_flight(cfg: Config, executor: Any, workers: int) -> int:
    """Trials running at once: ``tune.max_in_flight``, else ``--workers`` locally and
    ``max(2, CPUs // 4)`` on Ray, enough to keep a cluster busy while TPE and the pruner still
    learn from finished trials (asking for one trial per CPU up front is a random search)."""
    cap = cfg.tune.max_in_flight
    if executor.name == "ray":
        return cap or max(2, executor.capacity() // 4)
    return min(cap, workers) if cap else workers


def _trial_task(cfg_dict: dict, table: Any, start: str, prune: Any, emit: Any = None) -> dict:
    from cryptocast.tune.trial import run_trial

    return run_trial(cfg_dict, table, start, prune, emit)


def run_tune(
    cfg: Config,
    data_dir: Path,
    executor: str = "local",
    workers: int = 1,
    ray_address: str | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> TuneResult:
    """Run (or resume) the study until it holds ``tune.trials`` finished trials or time is up.

    Finished trials of a run still going (another process on the same study) are not counted:
    each process runs its own (:mod:`cryptocast.tune.storage`).
    """
    from cryptocast.config.schema import config_from_dict
    from cryptocast.evaluate.backtest import _threads
    from cryptocast.executor import Task, make_executor
    from cryptocast.models.registry import is_trainable
    from cryptocast.training.loop import prefer_passive_openmp
    from cryptocast.training.runs import load_feature_table
    from cryptocast.tune import pruning, storage
    from cryptocast.tune.space import apply_params, suggest
    from cryptocast.tune.tables import TrialTables
    from cryptocast.tune.trial import trial_config, tuning_table

    optuna = import_optuna()
    from optuna.trial import TrialState

    tu = cfg.tune
    params = _check(cfg)
    if executor == "ray":
        from cryptocast.executor import import_ray

        import_ray()
    prefer_passive_openmp()
    df = load_feature_table(cfg, data_dir)
    period = tuning_table(cfg, df)
    from cryptocast.evaluate.walkforward import job_folds

    n_folds = len(job_folds(period.table, trial_config(cfg.to_dict(), period.start)))

    name = study_name(cfg)
    study_dir = Path(cfg.output.runs_dir) / "tune" / name
    study_dir.mkdir(parents=True, exist_ok=True)
    url = tu.storage or storage.sqlite_url(study_dir)
    study = storage.open_study(optuna, cfg, name, url)
    _check_identity(study, cfg, name, url)

    remaining = tu.trials - storage.credited_trials(study)
    ex = make_executor(executor, workers, ray_address)
    limit = in_flight(cfg, ex, workers)
    if on_event:
        on_event(
            {"event": "plan", "trials": max(remaining, 0), "folds": n_folds, "study": name,
             "in_flight": limit}
        )  # fmt: skip
    if on_event and executor == "ray":
        on_event({"event": "ray", "startup_seconds": ex.startup_seconds})
    live = executor == "local" and workers == 1
    # the backtest's rules: the same thread plan on every executor (identical floats by seed),
    # and a GPU for a trial that trains on one (``auto`` included, where the cluster has GPUs)
    threads = _threads(cfg, workers)
    gpus = ex.gpus_for(cfg.train.device, is_trainable(cfg.model.name))
    base = cfg.to_dict()
    deadline = time.monotonic() + tu.timeout if tu.timeout else None
    pending: list = []
    trials: dict[int, Any] = {}
    run_id = storage.begin_run(study, tu.trials) if remaining > 0 else None
    board = None
    try:
        if not live and tu.pruner != "none" and remaining > 0:
            board = pruning.make_board(executor)
            board.publish(pruning.medians(study))
        tables = TrialTables(cfg, data_dir, period, ex)
        while remaining > 0 or pending:
            out_of_time = deadline is not None and time.monotonic() > deadline
            while remaining > 0 and not out_of_time and len(pending) < limit:
                remaining -= 1
                trial = study.ask()
                trial.set_user_attr("run", run_id)
                sampled = suggest(trial, params)
                try:
                    tcfg = config_from_dict(apply_params(base, sampled), f"trial {trial.number}")
                    table = tables.get(tcfg)  # a searched features.* key: its own table
                except CryptocastError as err:  # e.g. d_model not divisible by n_heads
                    study.tell(trial, state=TrialState.FAIL)
                    _emit(on_event, trial.number, "failed", None, study, error=err)
                    continue
                prune = None
                if tu.pruner != "none":
                    prune = (
                        pruning.LivePruning(trial)
                        if live
                        else pruning.BoardPruning(pruning.reader(board))
                    )
                trials[trial.number] = (trial, prune, sampled)
                task = Task(
                    f"trial {trial.number}",
                    _trial_task,
                    (tcfg.to_dict(), table, period.start, prune),
                    threads,
                    gpus,
                )
                pending.append(ex.submit(task))
            if not pending:
                break
            done, pending = ex.wait(pending)
            for out in done:
                number = int(out.task.name.split()[-1])
                trial, prune, sampled = trials.pop(number)
                if out.error is not None:
                    study.tell(trial, state=TrialState.FAIL)
                    _emit(on_event, number, "failed", None, study, error=out.error, params=sampled)
                    continue
                res = out.value
                if prune is None or not getattr(prune, "reported", False):
                    for step, v in enumerate(res["values"]):
                        trial.report(v, step)
                if res["pruned"]:
                    study.tell(trial, state=TrialState.PRUNED)
                    _emit(on_event, number, "pruned", res["value"], study, params=sampled)
                else:
                    study.tell(trial, res["value"])
                    _emit(on_event, number, "complete", res["value"], study, params=sampled)
                if board is not None:  # the running trials prune against this from now on
                    board.publish(pruning.medians(study))
    except BaseException:
        for trial, _, _ in trials.values():  # Ctrl-C: the rerun resumes without them
            study.tell(trial, state=TrialState.FAIL)
        ex.close(cancel=True)
        raise
    finally:
        # never masks the error that ended the run: an unmarked run only goes uncredited
        with contextlib.suppress(Exception):
            if run_id is not None:
                storage.end_run(study, run_id)
        with contextlib.suppress(Exception):
            if board is not None:
                board.close()
    ex.close()
    return _finish(study, cfg, study_dir, url, period)


def _check(cfg: Config) -> list[Any]:
    """The space's parameters; a metric that cannot score this config fails before any work."""
    from cryptocast.config.sections import searchable_fields
    from cryptocast.config.space import parse_space
    from cryptocast.evaluate.scoring import scoring_for
    from cryptocast.features.targets import get_target
    from cryptocast.tune.trial import TARGET_KIND, get_score

    tu = cfg.tune
    params = parse_space(tu.space, searchable_fields())
    if not params:
        raise ConfigError(
            "tune.space is empty; declare what to search, e.g. tune.space: "
            "{model.d_model: [16, 32], train.lr: {log_uniform: [1.0e-4, 1.0e-2]}}"
        )
    get_score(tu.metric)
    kind = get_target(cfg.features.target).kind
    if TARGET_KIND.get(tu.metric, kind) != kind:
        raise ConfigError(
            f"tune.metric {tu.metric} does not score features.target={cfg.features.target}; "
            + scoring_for(kind).tune_hint
        )
    if tu.metric == "crps" and cfg.model.quantiles is None:
        raise ConfigError(
            "tune.metric crps needs a quantile model: set model.quantiles and train.loss=pinball"
        )
    return params


def _check_identity(study: Any, cfg: Config, name: str, url: str) -> None:
    ident_hash = identity_hash(cfg)
    old = study.user_attrs.get("config_hash")
    if old is None:
        study.set_user_attr("config_hash", ident_hash)
        study.set_user_attr("config", cfg.to_dict())
    elif old != ident_hash:
        raise ConfigError(
            f"study {name!r} in {url} was made from another config (hash {old}, now "
            f"{ident_hash}); set tune.study_name for a new study"
        )


def _emit(on_event: Any, number: int, state: str, value: Any, study: Any, **extra: Any) -> None:
    if on_event is None:
        return
    try:
        best = study.best_value
    except ValueError:  # no complete trial yet
        best = None
    on_event({"event": "trial", "number": number, "state": state, "value": value, "best": best})
    if extra.get("error") is not None:
        on_event({"event": "trial_failed", "number": number, "error": extra["error"]})


def _finish(study: Any, cfg: Config, study_dir: Path, storage: str, period: Any) -> TuneResult:
    import yaml
    from optuna.trial import TrialState

    from cryptocast.tune.history import plot_history
    from cryptocast.tune.space import apply_params

    all_trials = study.get_trials(deepcopy=False)
    counts = {s.name.lower(): 0 for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    for t in all_trials:
        key = t.state.name.lower()
        counts[key] = counts.get(key, 0) + 1
    complete = sorted(
        (t for t in all_trials if t.state == TrialState.COMPLETE), key=lambda t: t.value
    )
    top = [{"number": t.number, "value": t.value, **t.params} for t in complete[:5]]
    best_config = plot = None
    best_value, best_params = None, {}
    if complete:
        best_value, best_params = complete[0].value, dict(complete[0].params)
        raw = apply_params(cfg.to_dict(), best_params)
        best_config = study_dir / "best.yaml"
        header = (
            f"# cryptocast tune: best of {len(complete)} complete trials (study "
            f"{study.study_name}), {cfg.tune.metric} {best_value:.6g} on the tuning period "
            f"{period.start} .. {period.end}.\n# Evaluate it on the untouched test period: "
            f"cryptocast backtest --config {best_config}\n"
        )
        tmp = best_config.with_suffix(".yaml.tmp")
        tmp.write_text(header + yaml.safe_dump(raw, sort_keys=False))
        tmp.replace(best_config)
        plot = plot_history(all_trials, study_dir / "history.png", cfg.tune.metric)
    return TuneResult(
        study_dir=study_dir,
        storage=storage,
        study_name=study.study_name,
        best_value=best_value,
        best_params=best_params,
        best_config=best_config,
        plot=plot,
        counts=counts,
        top=top,
        period={"start": period.start, "end": period.end, "test_start": period.test_start},
    )
