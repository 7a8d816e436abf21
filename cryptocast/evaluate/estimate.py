"""How long a backtest plan will take, known before it starts.

A walk-forward grid's time goes to its neural refits: each trains up to ``train.epochs`` epochs
(``backtest.warm_epochs`` when it continues an earlier fit) over every ``train.window_stride``-th
training window and scores its validation windows once per epoch (a combination, ``vol_combo`` or
``vol_select``, each of its neural members, cold, every refit); the naive baselines fit in
closed form and are counted as free. A probe times a few training and scoring steps of each
neural model at the config's sizes, batch and lookback, with the torch threads each job will get
(the thread plan), on this machine; the estimate is windows x epochs x those rates, summed over
every refit of every job and spread over the workers (a pooled job, ``backtest.pooled``: one
refit per fold over the training windows of every series of its pool). Early stopping
(``train.patience``) usually ends a refit sooner; the per-fold work around a fit (scaling,
prediction) is not counted (about a quarter of a small daily refit's time, measured on
``configs/demo.yaml``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptocast.config.schema import Config

#: on a terminal, a plan estimated longer than this asks before it starts (``--yes`` skips)
CONFIRM_OVER_S = 600.0


@dataclass(frozen=True)
class PlanEstimate:
    """The plan's size and its refits' wall time if each runs all its epochs (``seconds``)."""

    jobs: int
    folds: int
    refits: int  # neural refits (the baselines' closed-form fits are not counted)
    seconds: float
    parallel: int  # jobs running at once (local workers; 1 for Ray: compute at this machine's pace)
    rates: dict[str, float] = field(default_factory=dict)  # model -> probed s per training window
    executor: str = "local"

    def describe(self) -> str:
        """``plan: 6 jobs, 24 folds, 16 neural refits; estimated 4.2 min if every refit ...``."""
        head = f"plan: {self.jobs} jobs, {self.folds} folds, {self.refits} neural refits"
        if not self.refits:
            return f"{head}; naive models only: seconds"
        where = f"{self.parallel} job(s) at a time" if self.parallel > 1 else "one job at a time"
        if self.executor == "ray":
            where = "compute at this machine's pace, spread over the Ray cluster"
        return (
            f"{head}; estimated {human_duration(self.seconds)} if every refit runs all its "
            f"epochs ({where}, from a probe of each model here; early stopping ends sooner)"
        )


def human_duration(seconds: float) -> str:
    """``40 s``, ``4.2 min``, ``3 h 05 min``."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes:02d} min"


def trained_models(cfg: Config) -> list[str]:
    """The models a job of ``cfg.model.name`` trains by gradient descent: itself, a combination's
    neural members (``model.members``), or none (the closed-form baselines, ``gbm_vol``)."""
    from cryptocast.models.registry import COMBINATIONS, is_trainable

    name = cfg.model.name
    if name in COMBINATIONS:
        return [m for m in cfg.model.members if is_trainable(m)]
    return [name] if is_trainable(name) else []


def as_model(cfg: Config, name: str) -> Config:
    """``cfg`` with ``model.name`` set to ``name`` (itself when it already is)."""
    if cfg.model.name == name:
        return cfg
    c = cfg.model_copy(deep=True)
    c.model.name = name
    return c


def probe_rates(cfg: Config, n_features: int, threads: int, steps: int = 3) -> tuple[float, float]:
    """Seconds per training window and per scored window of ``cfg.model`` on this machine.

    Times ``steps`` optimiser steps (forward, backward, clipping, AdamW) and forward passes on a
    batch of ``train.batch_size`` random windows, after one untimed step of each (lazy set-up).
    """
    import torch

    from cryptocast.models.registry import build_model
    from cryptocast.training.loop import resolve_device

    f, tr = cfg.features, cfg.train
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        device = resolve_device(tr.device)
        model = build_model(cfg.model, n_features, f.horizon, f.lookback).to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=tr.lr)
        x = torch.randn(tr.batch_size, f.lookback, n_features, device=device)

        def train_step() -> None:
            opt.zero_grad(set_to_none=True)
            model(x).float().square().mean().backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()

        def score_step() -> None:
            with torch.no_grad():
                model(x)

        rates = []
        for step, train in ((train_step, True), (score_step, False)):
            model.train(train)
            step()  # untimed: first-call allocations and kernel selection
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(steps):
                step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            rates.append((time.perf_counter() - t0) / (steps * tr.batch_size))
        return rates[0], rates[1]
    finally:
        torch.set_num_threads(before)


def _windows(rows: tuple[int, int], lookback: int, horizon: int) -> int:
    """Windows with origin ``e`` in ``[lo + L - 1, hi - H)``: ``features.windows.window_ends``."""
    lo, hi = rows
    return max(0, hi - lo - lookback - horizon + 1)


def estimate_backtest(cfg: Config, data_dir: Path, executor: str = "local") -> PlanEstimate:
    """The plan of ``run_backtest(cfg, data_dir)`` and how long its refits take at full epochs.

    Runs the same pre-flight as the backtest (names, stored series, feature tables, folds), so a
    bad plan fails here with the same error, before anything trains.
    """
    from cryptocast.evaluate.backtest import _threads, validate
    from cryptocast.evaluate.pooled import cut_rows, per_series, pool_units, pooled_folds
    from cryptocast.evaluate.walkforward import job_config, job_folds
    from cryptocast.features.table import feature_columns
    from cryptocast.models.registry import is_trainable
    from cryptocast.training.runs import load_feature_table
    from cryptocast.training.threads import apply_thread_plan

    bt = cfg.backtest
    n_models = len(dict.fromkeys(m for m in bt.models if m))
    n_jobs = len(bt.symbols) * len(bt.timeframes) * n_models
    workers = min(max(1, bt.workers), max(1, n_jobs))
    apply_thread_plan(workers, cfg.train.num_threads)  # as run_backtest: before torch loads
    jobs = validate(cfg, data_dir)
    units = pool_units(cfg, jobs, data_dir)  # checks train.universe before any feature is built
    threads = _threads(cfg, workers)  # each job's torch threads, on every executor
    parallel = workers if executor == "local" else 1
    tables, folds, probed = {}, {}, {}
    job_seconds: list[float] = []
    n_folds = refits = 0
    run = set(per_series(cfg, jobs))  # backtest.pooled=only: the pooled models replace theirs
    for s, t, m in jobs:
        c = job_config(cfg, s, t, m)
        if (s, t) not in tables:
            tables[(s, t)] = load_feature_table(c, data_dir)
            folds[(s, t)] = job_folds(tables[(s, t)], c)
        if (s, t, m) not in run:
            continue
        n_folds += len(folds[(s, t)])
        trained = trained_models(c)
        if not trained:
            job_seconds.append(0.0)
            continue
        f, tr = c.features, c.train
        seconds = 0.0
        for member in trained:  # a combination fits each neural member every refit, cold
            key = (member, tr.batch_size, t)
            if key not in probed:
                probed[key] = probe_rates(
                    as_model(c, member), len(feature_columns(tables[(s, t)])), threads
                )
            t_train, t_score = probed[key]
            warm, first = c.backtest.warm_start and member == m, True
            for fold in folds[(s, t)]:
                if not fold.retrain and not first:
                    continue
                epochs = bt.warm_epochs if warm and not first else tr.epochs
                train_w = math.ceil(_windows(fold.train, f.lookback, f.horizon) / tr.window_stride)
                val_w = _windows(fold.val, f.lookback, f.horizon)
                seconds += epochs * (train_w * t_train + val_w * t_score)
                refits, first = refits + 1, False
        job_seconds.append(seconds)
    for u in units:  # backtest.pooled: one refit per fold over the whole pool
        c = job_config(cfg, u.symbols[0], u.timeframe, u.model)
        pool = {s: tables.get((s, u.timeframe)) for s in u.series}
        for s in u.universe:
            pool[s] = load_feature_table(job_config(cfg, s, u.timeframe, u.model), data_dir)
        f, tr = c.features, c.train
        fold_lists, cuts = pooled_folds(pool, u, cfg)
        n_folds += sum(len(folds[(s, u.timeframe)]) for s in u.symbols)
        if not is_trainable(u.model):  # gbm_vol: fitted in seconds, like its per-series jobs
            job_seconds.append(0.0)
            continue
        key = (u.model, tr.batch_size, u.timeframe)
        if key not in probed:
            probed[key] = probe_rates(c, len(feature_columns(pool[u.symbols[0]])), threads)
        t_train, t_score = probed[key]
        seconds = 0.0
        for k, cut in enumerate(cuts):
            if k and not fold_lists[u.symbols[0]][k].retrain:
                continue
            epochs = bt.warm_epochs if c.backtest.warm_start and k else tr.epochs
            for rows in filter(None, (cut_rows(df, cut, c) for df in pool.values())):
                train_w = math.ceil(
                    _windows(rows["train"], f.lookback, f.horizon) / tr.window_stride
                )
                val_w = _windows(rows["val"], f.lookback, f.horizon)
                seconds += epochs * (train_w * t_train + val_w * t_score)
            refits += 1
        job_seconds.append(seconds)
    wall = max(sum(job_seconds) / parallel, max(job_seconds, default=0.0))
    rates = {m: r[0] for (m, _, _), r in probed.items()}
    return PlanEstimate(len(job_seconds), n_folds, refits, wall, parallel, rates, executor)
