"""The threading default: the old one (PASSIVE + all cores) vs the plan (``cryptocast.training.threads``).

OpenMP reads ``OMP_WAIT_POLICY`` once, when torch loads, so every measurement is a fresh process:
``old`` sets ``OMP_WAIT_POLICY=PASSIVE`` and ``cpu_count`` torch threads (what ``train`` and
``backtest`` did before issue 16, with ``train.num_threads`` unset); ``new`` calls
``apply_thread_plan(1)`` (one job) before torch loads and uses its thread count; ``spin`` is
torch's own default (``cpu_count`` threads, OpenMP's spinning wait) and ``one`` a single thread.

The machine is measured quiet and busy (``--busy 0,1``: that many other processes spinning on a
core each, started before the rounds and held until the 1-minute load average shows them, as a
neighbour's job would), so the default is checked where each policy can lose. Two tasks, each
timed inside the process after imports and a feature-cache warm-up:

- ``train``: ``train_run`` of ``configs/tiny.yaml`` (a 16-wide Performer-BiLSTM, 3 epochs);
- ``refit``: a walk-forward backtest of the darts-anchor LSTM (25 units, 5 epochs, lookback 30),
  two 30-day folds, seconds per refit.

Rounds interleave old and new (old, new, old, new, ...; quick mode: one round of the refit) so load bursts hit both; the ratio
old / new (> 1: the new default is faster) is reported per round with its median and range, and
the 1-minute load average before and after. Daily BTC reference candles, else synthetic ones.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.candles import daily_candles
from bench.common import REPO, cli, write_results

NAME = "threads"
CHILD = r"""
import json, os, sys, time
variant, task, data_dir, runs = sys.argv[1:5]
if variant == "old":
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    threads, why = os.cpu_count() or 1, "PASSIVE, cpu_count threads"
elif variant == "spin":
    threads, why = os.cpu_count() or 1, "torch default: cpu_count threads, spinning wait"
elif variant == "one":
    threads, why = 1, "one thread"
else:
    from cryptocast.training.threads import apply_thread_plan
    plan = apply_thread_plan(1)
    threads, why = plan.threads, plan.reason
import torch
policy = os.environ.get("OMP_WAIT_POLICY")  # what OpenMP read when torch loaded
torch.set_num_threads(threads)
from pathlib import Path
from bench.candles import last_candle, walk_period
from bench.common import config
from bench.settings import DARTS, without_threads
if task == "train":
    from cryptocast.evaluate.holdout import train_run
    cfg = config("tiny", ["train.num_threads=null", "train.device=cpu", "data.start=2019-01-01",
        f"output.runs_dir={runs}"])
    t0 = time.perf_counter()
    train_run(cfg, Path(data_dir))
    seconds = time.perf_counter() - t0
else:
    from cryptocast.evaluate.backtest import run_backtest
    period = walk_period(last_candle(Path(data_dir)), 2, 30)
    cfg = config("tiny", [*without_threads(DARTS), "train.num_threads=null",
        "backtest.fold_length=30", *period])
    t0 = time.perf_counter()
    res = run_backtest(cfg, Path(data_dir))
    seconds = (time.perf_counter() - t0) / sum(f["retrained"] for f in res[0].fold_info)
print("RESULT " + json.dumps({"seconds": seconds, "threads": threads,
      "policy": policy, "why": why}))
"""


def _child(variant: str, task: str, data_dir: Path, runs: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    out = subprocess.run(
        [sys.executable, "-c", CHILD, variant, task, str(data_dir), str(runs)],
        cwd=REPO, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    lines = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"{variant} {task} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


SPIN = "while True:\n    pass\n"
VARIANTS = ("old", "new", "spin", "one")


def _busy(n: int) -> list[subprocess.Popen]:
    """``n`` processes spinning on a core each, held until the load average shows them."""
    import time

    from cryptocast.training.threads import machine_load

    procs = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(n)]
    t0 = time.monotonic()
    while n and (machine_load() or 0.0) < n - 0.25 and time.monotonic() - t0 < 120:
        time.sleep(2)
    return procs


def run(quick: bool, rounds: int | None = None, busy: list[int] | None = None) -> list[dict]:
    rounds = rounds or (1 if quick else 3)
    busy = busy if busy is not None else ([0] if quick else [0, 1])
    records: list[dict] = []
    with tempfile.TemporaryDirectory() as d:
        data_dir, label, _ = daily_candles(Path(d), quick)
        runs = Path(d) / "runs"
        # quick (CI smoke, well under a minute): the refit only, no warm-up, new first so the
        # feature-cache build lands on the new default's time (never flatters it)
        order = ("new", "old") if quick else VARIANTS
        for level in busy:
            spinners = _busy(level)
            try:
                for task in ("refit",) if quick else ("train", "refit"):
                    records += _measure(task, order, rounds, level, data_dir, runs, label, quick)
            finally:
                for p in spinners:
                    p.kill()
                    p.wait()
    return records


def _measure(task, order, rounds, level, data_dir, runs, label, quick) -> list[dict]:
    """Interleaved rounds of ``order``'s variants on one task at one busy level."""
    from cryptocast.training.threads import machine_load

    if not quick:
        _child("new", task, data_dir, runs)  # warm-up: feature cache, file system
    times: dict[str, list[float]] = {v: [] for v in order}
    info: dict[str, dict] = {}
    loads = [machine_load()]
    for _ in range(rounds):
        for variant in order:
            info[variant] = _child(variant, task, data_dir, runs)
            times[variant].append(info[variant]["seconds"])
        loads.append(machine_load())
    unit = "s" if task == "train" else "s per refit"
    load = [None if x is None else round(x, 2) for x in loads]
    out = []
    for variant in order:
        params = {"data": label, "task": task, "variant": variant, "rounds": rounds,
                  "busy": level, "threads": info[variant]["threads"],
                  "omp_wait_policy": info[variant]["policy"] or "default",
                  "why": info[variant]["why"]}  # fmt: skip
        out.append({"figure": f"threads {task} seconds",
                    "value": round(statistics.median(times[variant]), 4),
                    "unit": unit, "params": params,
                    "runs": [round(t, 4) for t in times[variant]]})  # fmt: skip
    for other in (v for v in order if v != "new"):
        ratios = [o / n for o, n in zip(times[other], times["new"], strict=True)]
        name = "old" if other == "old" else other
        out.append({"figure": f"threads {task} speed-up, new default over {name}",
                    "value": round(statistics.median(ratios), 3), "unit": "x",
                    "params": {"data": label, "task": task, "rounds": rounds, "busy": level},
                    "ratios": [round(r, 3) for r in ratios], "load_average": load})  # fmt: skip
    print(f"  busy {level} {task}: " + ", ".join(f"{v} {statistics.median(t):.3f}"
          for v, t in times.items()) + f" load {load}", flush=True)  # fmt: skip
    return out


if __name__ == "__main__":
    ap = cli(__doc__, "one round on small data")
    ap.add_argument("--rounds", type=int, help="interleaved rounds of the variants (3; quick 1)")
    ap.add_argument("--busy", help="comma list of busy levels: spinning processes (0,1; quick 0)")
    a = ap.parse_args()
    levels = [int(x) for x in a.busy.split(",")] if a.busy else None
    path = write_results(NAME, run(a.quick, a.rounds, levels), a.quick)
    print(f"results in {path}")
