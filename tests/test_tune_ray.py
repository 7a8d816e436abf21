"""``tune --executor ray`` on a real local Ray (issue 25 point 2): at most ``tune.max_in_flight``
trials run at once (default ``max(2, CPUs // 4)``, not one per CPU), and a running trial prunes
against medians the driver publishes after it started (the live study), also through the local
worker processes' board. The two-node cluster is tests/test_tune_ray_cluster.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import local_ray
from tests.test_backtest import store
from tests.test_tune import CANDLES, config

ray = pytest.importorskip("ray")
optuna = pytest.importorskip("optuna")
pytestmark = pytest.mark.usefixtures("restore_torch_threads")


@pytest.fixture(scope="module")
def eight_cpu_ray():
    """A local Ray that believes it has 8 CPUs: the old driver asked for 8 trials at once."""
    # address="local": a new instance, never another process's cluster on this machine
    with local_ray(address="local", num_cpus=8):
        yield


@pytest.fixture
def data(data_dir: Path) -> Path:
    return store(data_dir, CANDLES)


def max_in_flight(trials: list) -> int:
    """Most trials running at once, from Optuna's start and completion times."""
    events = [(t.datetime_start, 1) for t in trials] + [(t.datetime_complete, -1) for t in trials]
    most = running = 0
    for _, step in sorted(events):  # at equal times the completion (-1) sorts first
        running += step
        most = max(most, running)
    return most


def test_ray_tuning_keeps_at_most_max_in_flight_trials(eight_cpu_ray, tmp_path, data):
    from cryptocast.tune.study import run_tune

    events: list[dict] = []
    res = run_tune(
        config(tmp_path, "tune.trials=4", "tune.pruner=none"), data, "ray", on_event=events.append
    )
    study = optuna.load_study(study_name=res.study_name, storage=res.storage)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 4
    assert max_in_flight(study.trials) == 2  # before: all 4 asked for at once
    plan = next(e for e in events if e["event"] == "plan")
    assert plan["in_flight"] == 2  # max(2, 8 // 4)


@ray.remote(num_cpus=0)
class Flag:
    def __init__(self) -> None:
        self.up = False

    def raise_(self) -> None:
        self.up = True

    def is_up(self) -> bool:
        return self.up


def _until_pruned(prune, started) -> list[bool]:
    """A trial's fold loop in slow motion: check the rule at fold 0 until it says stop."""
    seen = [prune(0, 10.0)]
    started()
    t0 = time.monotonic()
    while not seen[-1] and time.monotonic() - t0 < 60:
        time.sleep(0.05)
        seen.append(prune(0, 10.0))
    return seen


@ray.remote(num_cpus=1)
def _ray_trial(prune, flag) -> list[bool]:
    return _until_pruned(prune, lambda: ray.get(flag.raise_.remote()))


def test_a_running_ray_trial_prunes_against_medians_published_after_it_started(eight_cpu_ray):
    from cryptocast.tune.pruning import BoardPruning, make_board, reader

    board = make_board("ray")
    flag = Flag.remote()
    ref = _ray_trial.remote(BoardPruning(reader(board)), flag)
    t0 = time.monotonic()
    while not ray.get(flag.is_up.remote()):  # the trial runs and saw no median yet
        assert time.monotonic() - t0 < 60
        time.sleep(0.05)
    board.publish({0: 1.0})  # a trial finished meanwhile: its median is 1.0 at fold 0
    seen = ray.get(ref)
    assert seen[0] is False and seen[-1] is True
    board.close()


def _pool_trial(prune, event) -> list[bool]:
    return _until_pruned(prune, event.set)


def test_a_local_worker_process_prunes_against_the_live_board(tmp_path):
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from cryptocast.tune.pruning import BoardPruning, make_board, reader

    board = make_board("local")
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager, ProcessPoolExecutor(1, mp_context=ctx) as pool:
        event = manager.Event()
        fut = pool.submit(_pool_trial, BoardPruning(reader(board)), event)
        assert event.wait(60)
        board.publish({0: 1.0})
        seen = fut.result(60)
    assert seen[0] is False and seen[-1] is True
    board.close()
