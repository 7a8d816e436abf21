"""A backtest grid on each executor, Ray's start-up cost, and tune trials per minute.

- ``grid``: 12 jobs (BTC, ETH, LTC daily x performer_bilstm, lstm, gru, transformer; small
  models, 2 epochs, 2 folds of 30 days, one torch thread per job) run three ways back to back:
  ``--workers 1`` (serial, in this process), ``--workers 2`` (two spawned processes) and
  ``--executor ray`` on a local Ray instance started for it (2 CPUs: one task per CPU). The
  speed-ups are ratios within this run. The forecasts of the three runs are compared bit for
  bit (``identical`` = 1).
- ``ray start-up``: ``ray.init`` of a local instance; the Ray grid time with and without it, and
  a second Ray run on the same instance (its workers have imported torch already).
- ``tune``: trials per minute of ``cryptocast tune`` (daily BTC, small LSTM, 3 folds, one
  process) with the median pruner and without it, same seed.

Quick mode: synthetic candles, 2 jobs serial only (no ``--workers 2``, no Ray: their start-up
alone exceeds the smoke budget on a busy 2-core machine), 1 fold, 1 epoch, 2 trials.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from bench.candles import candles_dir, last_candle, synthetic_candles, walk_period
from bench.common import config, main, record, timed
from bench.settings import SMALL as SMALL_NETS

NAME = "grid_exec"
COINS = ["BTC", "ETH", "LTC"]
MODELS = ["performer_bilstm", "lstm", "gru", "transformer"]
# The harness benchmarks' small nets, and the attention models' sizes to match.
SMALL = [
    *SMALL_NETS,
    "model.d_model=16",
    "model.n_heads=2",
    "model.n_layers=1",
    "model.nb_features=16",
    "model.lstm_hidden=16",
    "model.dim_feedforward=32",
    "backtest.fold_length=30",
]


def _data(root: Path, quick: bool) -> tuple[Path, str, pd.Timestamp]:
    """Daily candles of :data:`COINS` (reference, or 400 synthetic days in quick mode)."""
    ref = candles_dir(
        root / "ohlcv" / "binance",
        [f"{c}/USDT" for c in COINS],
        ["1d"],
        lambda i, _: synthetic_candles(400, i),
        reference=not quick,
    )
    return root, "reference 1d" if ref else "synthetic 1d", last_candle(root)


def _cfg(overrides: list[str]):
    return config("tiny", overrides)


def _grid(data_dir: Path, label: str, last: pd.Timestamp, quick: bool) -> list[dict]:
    import ray

    from cryptocast.evaluate.backtest import run_backtest
    from cryptocast.executor import RayExecutor

    coins, models = (COINS[:1], MODELS[1:3]) if quick else (COINS, MODELS)
    folds = 1 if quick else 2
    base = [
        *SMALL,
        f"backtest.symbols=[{', '.join(c + '/USDT' for c in coins)}]",
        f"backtest.models=[{', '.join(models)}]",
        *walk_period(last, folds),
    ]
    if quick:
        base.append("train.epochs=1")
    # warm-up: feature caches and torch imported here, outside every timing
    run_backtest(_cfg([*base, "backtest.models=[persistence]"]), data_dir)
    serial, r1 = timed(lambda: run_backtest(_cfg(base), data_dir))
    print(f"  serial: {serial:.1f} s", flush=True)
    two, r2 = None, r1
    if not quick:  # spawning two torch processes would take quick mode over its budget
        two, r2 = timed(lambda: run_backtest(_cfg([*base, "backtest.workers=2"]), data_dir))
        print(f"  --workers 2: {two:.1f} s", flush=True)
    p = {"data": label, "jobs": len(coins) * len(models), "folds_per_job": folds,
         "threads_per_job": 1, "models": ", ".join(models)}  # fmt: skip
    if quick:  # Ray's start-up alone (15-20 s on a busy 2-core machine) would blow the budget
        return [record("grid seconds, local serial", serial, "s", p)]
    if ray.is_initialized():
        ray.shutdown()
    ex = RayExecutor(None)  # ray.init of a local instance, timed inside
    start = ex.startup_seconds
    on_ray, r3 = timed(lambda: run_backtest(_cfg(base), data_dir, executor="ray"))
    warm, _ = timed(lambda: run_backtest(_cfg(base), data_dir, executor="ray"))
    cpus = int(ray.cluster_resources().get("CPU", 0))
    ray.shutdown()
    print(f"  ray: start {start:.1f} s, grid {on_ray:.1f} s, again {warm} s", flush=True)
    same = all(
        np.array_equal(a.y_pred, b.y_pred) and np.array_equal(a.y_pred, c.y_pred)
        for a, b, c in zip(r1, r2, r3, strict=True)
    )
    cold = start + on_ray
    rp = {**p, "ray_cpus": cpus}
    out = [record("grid seconds, local serial", serial, "s", p)]
    if two is not None:
        out.append(record("grid seconds, --workers 2", two, "s", p))
    out.append(record("grid seconds, --executor ray (start-up included)", cold, "s", rp))
    out.append(record("grid seconds, --executor ray (second run, warm workers)", warm, "s", rp))
    out.append(record("ray start-up seconds (local ray.init)", start, "s", {"ray_cpus": cpus}))
    if two is not None:
        out.append(record("grid speed-up over serial, --workers 2", serial / two, "x", p))
    out.append(record("grid speed-up over serial, --executor ray", serial / cold, "x", rp))
    out.append(record("grid forecasts identical on all executors", int(same), "bool", p))
    return out


def _tune(data_dir: Path, label: str, last: pd.Timestamp, quick: bool) -> list[dict]:
    from cryptocast.tune.study import run_tune

    trials = 2 if quick else 12
    test_start = (last.normalize() - pd.Timedelta(days=60)).tz_localize(None)
    base = [
        *SMALL,
        "model.name=lstm",
        "train.epochs=1" if quick else "train.epochs=2",
        "data.symbol=BTC/USDT",
        f"backtest.test_start={test_start:%Y-%m-%d}",
        "tune.folds=3",
        f"tune.trials={trials}",
        "tune.space={model.hidden_size: [8, 16, 32], train.lr: {log_uniform: [1.0e-4, 1.0e-2]},"
        " model.num_layers: {int: [1, 2]}}",
    ]
    records = []
    with tempfile.TemporaryDirectory() as runs:
        # warm-up (imports, the feature cache) outside the timings
        run_tune(_cfg([*base, "tune.trials=1", f"output.runs_dir={runs}/warm"]), data_dir)
        for pruner in ("median", "none"):
            cfg = _cfg([*base, f"tune.pruner={pruner}", f"output.runs_dir={runs}/{pruner}"])
            secs, res = timed(lambda cfg=cfg: run_tune(cfg, data_dir))
            rate = trials / secs * 60
            p = {"data": label, "trials": trials, "folds": 3, "model": "lstm", "pruner": pruner}
            records.append(record(f"tune trials per minute, pruner {pruner}", rate, "trials/min", p,
                                  pruned=res.counts.get("pruned", 0),
                                  best_value=round(res.best_value, 4)))  # fmt: skip
            print(f"  tune {pruner}: {rate:.1f} trials/min ({res.counts})", flush=True)
    return records


def run(quick: bool) -> list[dict]:
    with tempfile.TemporaryDirectory() as d:
        data_dir, label, last = _data(Path(d), quick)
        return _grid(data_dir, label, last, quick) + _tune(data_dir, label, last, quick)


if __name__ == "__main__":
    main(NAME, run, __doc__, "synthetic candles, small and fast", echo="json")
