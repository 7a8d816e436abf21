"""``tune --executor ray`` on a simulated two-node cluster (``ray.cluster_utils.Cluster``), as
tests/test_ray_cluster.py does for the backtest: the in-flight cap holds across nodes, and the
trials, wherever they run, read the pruning board (a Ray actor) and finish.
"""

from __future__ import annotations

import pytest

from tests.conftest import ray_cluster
from tests.test_backtest import store
from tests.test_tune import CANDLES, config
from tests.test_tune_ray import max_in_flight

ray = pytest.importorskip("ray")
optuna = pytest.importorskip("optuna")
pytestmark = pytest.mark.usefixtures("restore_torch_threads")


@pytest.fixture(scope="module")
def cluster():
    with ray_cluster({"num_cpus": 1}) as c:
        yield c


def test_two_nodes_run_one_trial_at_a_time_when_max_in_flight_is_1(cluster, tmp_path, data_dir):
    from cryptocast.tune.study import run_tune

    assert sum(n["Alive"] for n in ray.nodes()) == 2
    data = store(data_dir, CANDLES)
    cfg = config(tmp_path, "tune.trials=4", "tune.max_in_flight=1")  # median pruner: the board
    res = run_tune(cfg, data, "ray")
    study = optuna.load_study(study_name=res.study_name, storage=res.storage)
    assert len([t for t in study.trials if t.state.is_finished()]) == 4
    assert not [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert max_in_flight(study.trials) == 1  # before: one per cluster CPU, 2
