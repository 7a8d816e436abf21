"""Ray tasks on a two-node ``ray.cluster_utils.Cluster`` (issue 25, points 6 and 7).

The head node has one CPU; the second has one CPU and one GPU (declared: Ray schedules by the
resources a node announces, so a CPU-only machine can stand in for a GPU node). Tested:

- a lost worker process or node is retried (the tasks are idempotent): the fault trial kills one
  busy Ray worker with SIGKILL in the middle of a 12-job backtest, and every job's result is
  present exactly once and equal, bit for bit, to a run without the kill; a node removed while
  it runs a job changes nothing either (that test runs last: the cluster keeps one node);
- with ``train.device: auto`` a job that trains asks Ray for a GPU where the cluster has one (Ray
  hides every GPU a task did not ask for), a baseline asks for none;
- Ray tasks follow the local thread plan, so without ``train.num_threads`` the same seeds give
  the same forecasts locally and on Ray.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_ohlcv, ray_cluster
from tests.test_backtest import config, store
from tests.test_executor import _same

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")
pytestmark = pytest.mark.usefixtures("restore_torch_threads")

SYMBOLS = ["BTC/USDT", "ETH/USDT", "LTC/USDT"]
TRIAL = [  # 3 series x 4 models = 12 jobs
    f"backtest.symbols=[{', '.join(SYMBOLS)}]",
    "backtest.models=[lstm, gru, persistence, drift]",
    "backtest.test_start=2021-06-01",
    "backtest.fold_length=40",
]


@pytest.fixture(scope="module")
def cluster():
    with ray_cluster({"num_cpus": 1, "num_gpus": 1}, num_gpus=0) as c:
        yield c


@pytest.fixture(scope="module")
def trial_data(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("trial") / "data"
    for i, s in enumerate(SYMBOLS):
        candles = make_ohlcv(220, "1d", start="2021-01-01", seed=4 + i, price=100 * (i + 1))
        store(data, candles, s)
    return data


def _kill_one_busy_worker(names: list[str]) -> int | None:
    """SIGKILL one Ray worker process (of this test's cluster) that is running one of ``names``:
    Ray titles a worker process ``ray::<task name>`` while it runs a task."""
    for p in psutil.Process().children(recursive=True):
        try:
            title = " ".join(p.cmdline())
        except psutil.Error:
            continue
        if title.startswith("ray::") and any(f"ray::{n}" in title for n in names):
            os.kill(p.pid, signal.SIGKILL)
            return p.pid
    return None


def test_fault_trial_a_killed_worker_loses_no_job(cluster, trial_data):
    from cryptocast.evaluate.backtest import run_backtest

    cfg = config(*TRIAL)
    clean = run_backtest(cfg, trial_data, executor="ray")
    neural = [f"{s} 1d {m}" for s in SYMBOLS for m in ("lstm", "gru")]
    killed: list[int] = []
    events: list[dict] = []

    def on_event(ev: dict) -> None:
        events.append(ev)
        if ev.get("event") == "job" and not killed:  # in the middle: jobs done and jobs running
            pid = _kill_one_busy_worker(neural)
            if pid is not None:
                killed.append(pid)

    faulted = run_backtest(cfg, trial_data, on_event, executor="ray")
    assert len(killed) == 1
    jobs = [(r.symbol, r.timeframe, r.model) for r in faulted]
    assert len(jobs) == 12 and len(set(jobs)) == 12  # every job's result, exactly once
    assert all(e["ok"] for e in events if e.get("event") == "job")
    _same(clean, faulted, cfg)  # forecasts bit for bit, fold records, summary metrics


def test_device_auto_asks_ray_for_a_gpu_only_for_jobs_that_train(cluster, trial_data):
    from cryptocast.evaluate.backtest import run_backtest

    cfg = config(
        *TRIAL, "backtest.symbols=[BTC/USDT]", "backtest.models=[lstm, persistence]",
        "train.device=auto",
    )  # fmt: skip
    events: list[dict] = []
    run_backtest(cfg, trial_data, events.append, executor="ray")
    gpus = {e["job"][2]: e.get("gpus") for e in events if e.get("event") == "job"}
    assert gpus == {"lstm": 1, "persistence": 0}


def test_ray_tasks_follow_the_local_thread_plan(cluster, trial_data):
    """No ``train.num_threads``: the local run gives each job every core of this machine (one
    worker); a Ray task must run with the same count (it reserves at most a node's CPUs), else
    the forecasts differ in their last bits. The model is large enough for torch to use them."""
    from cryptocast.evaluate.backtest import run_backtest

    cfg = config(
        *TRIAL, "backtest.symbols=[BTC/USDT]", "backtest.models=[lstm]", "train.num_threads=null",
        "model.hidden_size=32", "features.lookback=16",
    )  # fmt: skip
    assert cfg.train.num_threads is None
    (local,) = run_backtest(cfg, trial_data)
    (remote,) = run_backtest(cfg, trial_data, executor="ray")
    assert np.array_equal(local.y_pred, remote.y_pred)


def test_a_lost_node_loses_no_job(cluster, trial_data):
    """A CPU node joins; whichever node but the head first runs a job is removed (its raylet and
    workers killed, no graceful drain, as when a preemptible machine goes): the job runs again
    elsewhere. Five epochs make the jobs long enough to be caught running."""
    from cryptocast.evaluate.backtest import run_backtest

    cfg = config(
        *TRIAL, "backtest.symbols=[BTC/USDT]", "backtest.models=[lstm, gru]", "train.epochs=5"
    )
    clean = run_backtest(cfg, trial_data, executor="ray")
    # Ray may place both jobs on the head node (it has a free CPU too); then nothing was lost and
    # the run proves nothing, so try again with a fresh node, up to five times (three were once
    # not enough on a quiet 2-core CI machine)
    for _attempt in range(5):
        removed, lost = _run_losing_a_node(cluster, cfg, trial_data)
        if removed:
            break
    assert removed and removed[0] not in cluster.list_all_nodes()  # Ray marks it dead later
    _same(clean, lost, cfg)


def _run_losing_a_node(cluster, cfg, trial_data) -> tuple[list, list]:
    """One backtest on Ray while a watcher removes the first non-head node seen running a job."""
    from cryptocast.evaluate.backtest import run_backtest

    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    others = [n for n in cluster.list_all_nodes() if n is not cluster.head_node]
    raylets = {n: psutil.Process(n.all_processes["raylet"][0].process.pid) for n in others}
    removed: list = []
    done = threading.Event()

    def remove_when_busy() -> None:  # as soon as a job runs on such a node, that node goes
        while not done.is_set():
            for node, raylet in raylets.items():
                with contextlib.suppress(psutil.Error):
                    titles = [" ".join(p.cmdline()) for p in raylet.children(recursive=True)]
                    if any(t.startswith("ray::BTC/USDT 1d") for t in titles):
                        cluster.remove_node(node, allow_graceful=False)
                        removed.append(node)
                        return
            time.sleep(0.01)  # a one-job window of a tiny net is short

    watcher = threading.Thread(target=remove_when_busy)
    watcher.start()
    try:
        lost = run_backtest(cfg, trial_data, executor="ray")
    finally:
        done.set()
        watcher.join()
    return removed, lost
