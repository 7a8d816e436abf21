"""``cryptocast backtest``: every (symbol, timeframe, model) job, in parallel, into one report.

Jobs are independent, so they run on an executor (:mod:`cryptocast.executor`): worker processes
here (``--workers``), each with the torch threads ``cryptocast.training.threads.plan_threads`` picks (one
per job when jobs run in parallel) so the machine is not oversubscribed (or ``train.num_threads``
when set, which makes results independent of ``--workers``), or Ray tasks (``--executor ray``).
Everything is validated, and every series' features are built, before the first job starts; the
tables are shipped to the jobs, which never read the data folder.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptocast.config.schema import Config
from cryptocast.errors import ConfigError, CryptocastError
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


def _threads(cfg: Config, workers: int) -> int:
    """Torch threads per job (``cryptocast.training.threads.plan_threads``: one per job in parallel)."""
    from cryptocast.training.threads import plan_threads

    # the count never depends on the load (plan_threads), so no measurement is needed here
    plan = plan_threads(workers, os.cpu_count() or 1, None, cfg.train.num_threads)
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
) -> list[Any]:
    """Run every job; returns ``JobResult``s in job order. ``on_event`` sees fold/job events.

    ``executor`` is ``local`` (``backtest.workers`` processes) or ``ray`` (one Ray task per job,
    see :mod:`cryptocast.executor`). A failing job does not stop the others; the first failure is
    raised at the end, prefixed with its job name (``on_event`` saw each one as it happened).
    """
    from cryptocast.evaluate.walkforward import job_config, job_folds
    from cryptocast.executor import Task, import_ray, make_executor, run_all
    from cryptocast.training.runs import load_feature_table
    from cryptocast.training.threads import apply_thread_plan

    bt = cfg.backtest
    # before torch loads here (validate imports the models) or in the spawned workers
    n_jobs = len(bt.symbols) * len(bt.timeframes) * len(dict.fromkeys(m for m in bt.models if m))
    apply_thread_plan(min(max(1, bt.workers), max(1, n_jobs)), cfg.train.num_threads)
    jobs = validate(cfg, data_dir)
    if executor == "ray":
        import_ray()  # a missing Ray fails before the features are built
    # Build features and check the folds of every series before any training starts.
    tables: dict[tuple[str, str], Any] = {}
    n_folds: dict[tuple[str, str], int] = {}
    for s, t in dict.fromkeys((s, t) for s, t, _ in jobs):
        c = job_config(cfg, s, t, jobs[0][2])
        tables[(s, t)] = load_feature_table(c, data_dir)
        n_folds[(s, t)] = len(job_folds(tables[(s, t)], c))
    if on_event:
        on_event(
            {"event": "plan", "jobs": len(jobs), "folds": sum(n_folds[(s, t)] for s, t, _ in jobs)}
        )
    workers = min(max(1, bt.workers), len(jobs))
    streams = executor == "local"  # Ray tasks report their folds when they finish

    def forward(ev: dict[str, Any]) -> None:
        if ev.get("event") != "task":
            if on_event:
                on_event(ev)
            return
        job = ev["outcome"].task.args[2]
        if on_event and ev["ok"] and not streams:
            for rec in ev["outcome"].value.fold_info:
                on_event({"symbol": job[0], "timeframe": job[1], "model": job[2], **rec})
        if on_event:
            on_event({"event": "job", "job": job, "ok": ev["ok"], "error": ev.get("error")})

    ex = make_executor(executor, workers, ray_address, forward)
    threads = _threads(cfg, workers) if executor == "local" else (cfg.train.num_threads or 1)
    gpus = 1.0 if cfg.train.device == "cuda" else 0.0
    cfg_dict = cfg.to_dict()
    try:
        # one shipped copy per series serves all its models (Ray: one object-store entry)
        shipped = {key: ex.put(df) for key, df in tables.items()}
        tasks = [
            Task(f"{s} {t} {m}", _job_task, (cfg_dict, shipped[(s, t)], (s, t, m)), threads, gpus)
            for s, t, m in jobs
        ]
        outcomes = run_all(ex, tasks)
    finally:
        ex.close()
    failed = [o for o in outcomes if o.error is not None]
    if failed:
        first = failed[0].error
        more = f" ({len(failed) - 1} more job(s) failed)" if len(failed) > 1 else ""
        if isinstance(first, CryptocastError):
            first.args = (f"{failed[0].task.name}: {first}{more}",)
        raise first
    return [o.value for o in outcomes]


def summarise(cfg: Config, results: list[Any]) -> tuple[dict[str, Any], Any, Any]:
    """Metrics, DM tests and trading stats per job -> (summary, forecasts frame, equity frame)."""
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
    forecasts = pd.concat(frames, ignore_index=True)
    equity = pd.concat(equities, ignore_index=True) if equities else None
    return summary, forecasts, equity
