"""``cryptocast backtest``: every (symbol, timeframe, model) job, in parallel, into one report.

Jobs are independent, so they run on an executor (:mod:`cryptocast.executor`): worker processes
here (``--workers``), each with the torch threads ``cryptocast.training.threads.plan_threads`` picks (one
per job when jobs run in parallel) so the machine is not oversubscribed (or ``train.num_threads``
when set, which makes results independent of ``--workers``), or Ray tasks (``--executor ray``).
Everything is validated, and every series' features are built, before the first job starts; the
tables are shipped to the jobs, which never read the data folder.

A failed job does not discard the others: :func:`run_backtest` raises ``PartialFailure`` carrying
the finished results and one :class:`JobFailure` per failed job, and with a ``jobs_dir`` every
finished job is kept on disk as it ends (:mod:`cryptocast.evaluate.jobstore`), so a rerun of the
same command redoes only the jobs that did not finish.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptocast.config.schema import Config
from cryptocast.errors import ConfigError, CryptocastError, PartialFailure, brief
from cryptocast.evaluate.scoring import (  # noqa: F401  (the leakage limits are part of this API)
    LEAKAGE_QLIKE_SKILL,
    LEAKAGE_SKILL,
    NEURAL,
)


def validate(cfg: Config, data_dir: Path) -> list[tuple[str, str, str]]:
    """Check models, metrics and series up front; return the job list."""
    from cryptocast.config.timeframes import symbol_slug, validate_timeframe
    from cryptocast.evaluate.metrics import select_metrics
    from cryptocast.models.registry import check_model_name, known_names

    bt = cfg.backtest
    known = known_names()
    models = [m for m in dict.fromkeys(bt.models) if m]
    for m in models:
        check_model_name(m, "backtest.models")
    if not models:
        raise ConfigError(
            "no model left to backtest; pass --models with at least one of " + ", ".join(known)
        )
    from cryptocast.features.targets import get_target

    target = get_target(cfg.features.target)
    target.check_models(models)
    from cryptocast.models.registry import COMBINATIONS, check_members

    for m in models:
        if m in COMBINATIONS:  # its members are checked here, before any job runs
            check_members(cfg.model.model_copy(update={"name": m}))
            target.check_models(list(cfg.model.members))
    if target.point_only and (cfg.model.quantiles is not None or bt.calibration != "none"):
        # the target and distribution seams compose in the model (quantiles of log RV), but the
        # quantile scores and the conformal calibration sets are built on closes
        raise ConfigError(
            f"features.target={target.name} is backtested as a point forecast; unset "
            "model.quantiles and backtest.calibration (quantile scores of volatility are not "
            "implemented)"
        )
    for t in bt.timeframes:
        target.check_timeframe(t)
    if bt.metrics is not None:
        select_metrics(bt.metrics)
    for s in bt.symbols:
        symbol_slug(s)
    for t in bt.timeframes:
        validate_timeframe(t)
    if not bt.symbols or not bt.timeframes:
        raise ConfigError("no series to backtest; pass --symbol and --timeframe")
    return [(s, t, m) for s in bt.symbols for t in bt.timeframes for m in models]


@dataclass(frozen=True)
class JobFailure:
    """A job that failed: its (symbol, timeframe, model) and the one-line error."""

    symbol: str
    timeframe: str
    model: str
    error: str

    @classmethod
    def of(cls, job: tuple[str, str, str], err: BaseException) -> JobFailure:
        why = (
            str(err) if isinstance(err, CryptocastError) else f"{type(err).__name__}: {brief(err)}"
        )
        return cls(*job, " ".join(why.split()))  # one line, whatever the error held

    def to_dict(self) -> dict[str, str]:
        return {"symbol": self.symbol, "timeframe": self.timeframe, "model": self.model,
                "error": self.error}  # fmt: skip


def _threads(cfg: Config, workers: int) -> int:
    """Torch threads per job (``cryptocast.training.threads.plan_threads``: one per job in parallel)."""
    from cryptocast.training.threads import available_cores, plan_threads

    # the count never depends on the load (plan_threads), so no measurement is needed here
    plan = plan_threads(workers, available_cores(), None, cfg.train.num_threads)
    return plan.threads


def _job_task(cfg_dict: dict, df: Any, job: tuple[str, str, str], emit: Any = None) -> Any:
    """One backtest job on any executor: the feature table arrives as an object, not a path."""
    from cryptocast.config.schema import config_from_dict
    from cryptocast.evaluate.walkforward import run_job

    return run_job(config_from_dict(cfg_dict), None, *job, on_fold=emit, df=df)


def run_backtest(
    cfg: Config,
    data_dir: Path,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    executor: str = "local",
    ray_address: str | None = None,
    jobs_dir: Path | None = None,
) -> list[Any]:
    """Run every job; returns ``JobResult``s in job order. ``on_event`` sees fold/job events.

    ``executor`` is ``local`` (``backtest.workers`` processes) or ``ray`` (one Ray task per job,
    see :mod:`cryptocast.executor`); both run a job with the same torch thread count
    (``cryptocast.training.threads.plan_threads``), so the same seeds give the same forecasts.
    ``jobs_dir``: keep each finished job there as it ends and reuse the ones stored under the
    same key (:mod:`cryptocast.evaluate.jobstore`; their events carry ``reused``); None: run all.

    Raises:
        PartialFailure: some jobs failed, others finished: ``done`` holds the finished
            ``JobResult``s in job order, ``failed`` one :class:`JobFailure` per failed job.
        CryptocastError: every job failed: the first failure, prefixed with its job name.
    """
    from cryptocast.evaluate.jobstore import JobStore, job_key, table_hash
    from cryptocast.evaluate.pooled import per_series, pool_units, pooled_task, result_order
    from cryptocast.evaluate.walkforward import job_config, job_folds
    from cryptocast.executor import Task, import_ray, make_executor, run_all
    from cryptocast.models.registry import is_trainable
    from cryptocast.training.runs import load_feature_table
    from cryptocast.training.threads import apply_thread_plan

    bt = cfg.backtest
    # before torch loads here (validate imports the models) or in the spawned workers
    n_jobs = len(bt.symbols) * len(bt.timeframes) * len(dict.fromkeys(m for m in bt.models if m))
    apply_thread_plan(min(max(1, bt.workers), max(1, n_jobs)), cfg.train.num_threads)
    jobs = validate(cfg, data_dir)
    units = pool_units(cfg, jobs, data_dir)  # backtest.pooled: one job per (timeframe, model)
    if executor == "ray":
        import_ray()  # a missing Ray fails before the features are built
    # Build features and check the folds of every series before any training starts.
    tables: dict[tuple[str, str], Any] = {}
    n_folds: dict[tuple[str, str], int] = {}
    for s, t in dict.fromkeys((s, t) for s, t, _ in jobs):
        c = job_config(cfg, s, t, jobs[0][2])
        tables[(s, t)] = load_feature_table(c, data_dir)
        n_folds[(s, t)] = len(job_folds(tables[(s, t)], c))
    for s, t in dict.fromkeys((s, u.timeframe) for u in units for s in u.universe):
        tables[(s, t)] = load_feature_table(job_config(cfg, s, t, jobs[0][2]), data_dir)
    jobs = per_series(cfg, jobs)  # backtest.pooled=only: the pooled models replace theirs
    unit_folds = sum(n_folds[key[:2]] for u in units for key in u.results)
    n_all = len(jobs) + len(units)
    if on_event:
        folds = sum(n_folds[(s, t)] for s, t, _ in jobs) + unit_folds
        on_event({"event": "plan", "jobs": n_all, "folds": folds})
    workers = min(max(1, bt.workers), n_all)
    # the local thread plan on every executor: the thread count changes a result's last bits
    threads = _threads(cfg, workers)
    store = JobStore(jobs_dir) if jobs_dir is not None else None
    keys: dict[tuple[str, str, str], str] = {}  # (symbol, timeframe, model) of a result -> key
    results: dict[tuple[str, str, str], Any] = {}
    if store is not None:
        digests = {key: table_hash(df) for key, df in tables.items()}
        for job in jobs:
            keys[job] = job_key(job_config(cfg, *job), digests[job[:2]], threads)
        for u in units:
            pool = [(s, digests[(s, u.timeframe)]) for s in u.series]
            for s, t, name in u.results:
                keys[(s, t, name)] = job_key(job_config(cfg, s, t, u.model), "", threads, pool)
        results = {k: kept for k, key in keys.items() if (kept := store.get(key)) is not None}
    streams = executor == "local"  # Ray tasks report their folds when they finish

    def report_job(job: tuple, values: list, ok: bool, replay: bool, **extra: Any) -> None:
        if on_event and ok and replay:  # folds not streamed as they ran: replay their records
            for r in values:
                for rec in r.fold_info:
                    on_event(
                        {"symbol": r.symbol, "timeframe": r.timeframe, "model": r.model, **rec}
                    )
        if on_event:
            on_event({"event": "job", "job": job, "ok": ok, **extra})

    def forward(ev: dict[str, Any]) -> None:
        if ev.get("event") != "task":
            if on_event:
                on_event(ev)
            return
        out = ev["outcome"]
        job = out.task.args[2]
        done = _as_list(out.value) if ev["ok"] else []
        if store is not None:
            for r in done:  # kept at once: a later crash cannot lose it
                store.put(keys[(r.symbol, r.timeframe, r.model)], r)
        report_job(job, done, ev["ok"], not streams, error=ev.get("error"), **out.meta)

    for job in jobs:
        if job in results:
            report_job(job, [results[job]], True, True, error=None, reused=True)
    for u in units:  # a pooled job is reused only when every symbol's result is kept
        if all(key in results for key in u.results):
            report_job(u.job, [results[key] for key in u.results], True, True, error=None,
                       reused=True)  # fmt: skip
    todo = [job for job in jobs if job not in results]
    todo_units = [u for u in units if not all(key in results for key in u.results)]
    outcomes = []
    if todo or todo_units:
        ex = make_executor(executor, workers, ray_address, forward)
        cfg_dict = cfg.to_dict()
        try:
            # one shipped copy per series serves all its models (Ray: one object-store entry)
            need = [j[:2] for j in todo] + [(s, u.timeframe) for u in todo_units for s in u.series]
            shipped = {key: ex.put(tables[key]) for key in dict.fromkeys(need)}
            tasks = [
                Task(
                    f"{s} {t} {m}",
                    _job_task,
                    (cfg_dict, shipped[(s, t)], (s, t, m)),
                    threads,
                    ex.gpus_for(cfg.train.device, is_trainable(m)),
                )
                for s, t, m in todo
            ]
            tasks += [
                Task(
                    " ".join(u.job),
                    pooled_task,
                    (cfg_dict, u, u.job, *[shipped[(s, u.timeframe)] for s in u.series]),
                    threads,
                    ex.gpus_for(cfg.train.device, is_trainable(u.model)),
                )
                for u in todo_units
            ]
            outcomes = run_all(ex, tasks)
        finally:
            ex.close()
    for o in outcomes:
        if o.error is None:
            results |= {(r.symbol, r.timeframe, r.model): r for r in _as_list(o.value)}
    failed = [o for o in outcomes if o.error is not None]
    order = result_order(jobs, units)
    if not failed:
        return [results[key] for key in order]
    if not results:  # nothing finished: the first failure, with its own exit code
        first = failed[0].error
        more = f" ({len(failed) - 1} more job(s) failed)" if len(failed) > 1 else ""
        if isinstance(first, CryptocastError):
            first.args = (f"{failed[0].task.name}: {first}{more}",)
        raise first
    failures = [JobFailure.of(o.task.args[2], o.error) for o in failed]
    names = "; ".join(f"{f.symbol} {f.timeframe} {f.model}: {f.error}" for f in failures[:3])
    more = f"; {len(failures) - 3} more" if len(failures) > 3 else ""
    raise PartialFailure(
        f"{len(failures)} of {n_all} backtest jobs failed ({names}{more})",
        done=[results[key] for key in order if key in results],
        failed=failures,
    )


def _as_list(value: Any) -> list[Any]:
    """A task's value as a list of ``JobResult``s (a pooled job returns one per symbol)."""
    return list(value) if isinstance(value, list) else [value]


def summarise(
    cfg: Config, results: list[Any], failed: tuple[JobFailure, ...] = ()
) -> tuple[dict[str, Any], Any, Any]:
    """Metrics, DM tests and trading stats per job -> (summary, forecasts frame, equity frame).

    ``failed`` (a partial backtest): listed in the summary's ``failed_jobs``, which the report
    shows as its "Failed jobs" section.
    """
    import pandas as pd

    from cryptocast.evaluate.frames import equity_frame, forecasts_frame
    from cryptocast.evaluate.scoring import scoring_for
    from cryptocast.features.targets import get_target
    from cryptocast.training.runs import package_versions

    bt = cfg.backtest
    target = get_target(cfg.features.target)
    records, frames, equities = [], [], []
    by_series: dict[tuple[str, str], list[Any]] = {}
    for r in results:
        by_series.setdefault((r.symbol, r.timeframe), []).append(r)
    for (symbol, tf), group in by_series.items():
        for r in group:
            frames.append(
                forecasts_frame(
                    r.timestamps,
                    symbol,
                    tf,
                    r.model,
                    r.folds,
                    r.last_close,
                    r.y_true,
                    r.y_pred,
                    r.y_quantiles,
                    r.quantile_levels,
                )  # fmt: skip
            )
        recs, curves, ok = scoring_for(target).score_series(group, bt)
        records.extend(recs)
        equities.append(equity_frame(group[0].timestamps[ok], tf, symbol, curves))
    summary = {
        "config_hash": cfg.hash(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "target": {"name": target.name, "kind": target.kind, "unit": target.unit},
        # report.md's header lists these keys: the models and the forecast origins tested
        "models": list(dict.fromkeys(r.model for r in results)),
        "test_start": str(min(r.timestamps[0] for r in results)) if results else None,
        "test_end": str(max(r.timestamps[-1] for r in results)) if results else None,
        "config": cfg.to_dict(),
        "versions": package_versions(),
        "data_ranges": {
            f"{r.symbol} {r.timeframe}": {
                "data": list(r.data_range),
                "test_first_origin": str(r.timestamps[0]),
                "test_last_origin": str(r.timestamps[-1]),
                "origins": int(len(r.timestamps)),
            }
            for r in results
        },
        "fold_info": {f"{r.symbol} {r.timeframe} {r.model}": r.fold_info for r in results},
        "results": records,
    }
    if failed:
        summary["failed_jobs"] = [f.to_dict() for f in failed]
    forecasts = pd.concat(frames, ignore_index=True)
    equity = pd.concat(equities, ignore_index=True) if equities else None
    return summary, forecasts, equity
