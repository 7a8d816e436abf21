"""``--executor ray`` on a simulated two-node cluster (``ray.cluster_utils.Cluster``).

Each node has one CPU and each job asks for one, so while two jobs run they run on different
nodes: the second node really takes work. Same seeds -> the same backtest on one node and two.
"""

from __future__ import annotations

import pytest

from tests.conftest import ray_cluster
from tests.test_backtest import config
from tests.test_executor import GRID, _same, grid_data

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.usefixtures("restore_torch_threads")


@pytest.fixture(scope="module")
def cluster():
    with ray_cluster() as c:  # one node; the test adds the second
        yield c


def test_one_node_and_two_give_the_same_backtest(cluster, tmp_path):
    from cryptocast.evaluate.backtest import run_backtest

    data = grid_data(tmp_path / "data")
    cfg = config(*GRID, "backtest.symbols=[BTC/USDT]")  # two jobs: one per node at a time
    one = run_backtest(cfg, data, executor="ray")
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    assert sum(n["Alive"] for n in ray.nodes()) == 2
    assert ray.cluster_resources()["CPU"] == 2
    two = run_backtest(cfg, data, executor="ray")
    _same(one, two, cfg)  # forecasts bit for bit, fold records, summary metrics
