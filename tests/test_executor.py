"""The executor seam against a real local Ray (one instance for this module, 2 CPUs).

Same seeds give the same backtest from ``local`` and ``ray``; Ray tasks get their feature tables
through the object store and never open the driver's data folder; one failing task is reported by
name while the others finish; tune runs one Ray task per trial with the same scores as locally.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cryptocast.cli import app
from tests.conftest import local_ray, make_ohlcv
from tests.test_backtest import cheat_model, config, store  # noqa: F401

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.usefixtures("restore_torch_threads")

SYMBOLS = ["BTC/USDT", "ETH/USDT"]
GRID = [
    f"backtest.symbols=[{', '.join(SYMBOLS)}]",
    "backtest.models=[lstm, persistence]",
    "backtest.test_start=2021-06-01",
    "backtest.fold_length=40",
]


@pytest.fixture(scope="module")
def two_cpu_ray():
    """One real Ray instance for the whole module (start-up is seconds on 2 cores)."""
    with local_ray(address="local", num_cpus=2, num_gpus=0):  # a new instance, never another
        yield


def grid_data(data_dir: Path) -> Path:
    for i, s in enumerate(SYMBOLS):
        store(
            data_dir, make_ohlcv(220, "1d", start="2021-01-01", seed=4 + i, price=100 * (i + 1)), s
        )
    return data_dir


def _same(a: list, b: list, cfg=None) -> None:
    from cryptocast.evaluate.backtest import summarise

    assert [(r.symbol, r.model) for r in a] == [(r.symbol, r.model) for r in b]
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.y_pred, y.y_pred), (x.symbol, x.model)
        assert x.fold_info == y.fold_info
    keys = ["n", "rmse", "mae", "skill_rmse", "sharpe"]
    cfg = cfg or config(*GRID)
    sa, sb = summarise(cfg, a)[0]["results"], summarise(cfg, b)[0]["results"]
    assert [[r[k] for k in keys] for r in sa] == [[r[k] for k in keys] for r in sb]


def test_ray_gives_the_local_results_without_opening_the_data_folder(two_cpu_ray, tmp_path):
    """The driver builds the tables, then the data folder disappears before any task runs: a task
    that opened it would fail. The results must equal the local run's, bit for bit."""
    from cryptocast.evaluate.backtest import run_backtest

    data = grid_data(tmp_path / "data")
    local = run_backtest(config(*GRID), data)
    events: list[dict] = []

    def on_event(ev: dict) -> None:
        if ev.get("event") == "plan":
            data.rename(tmp_path / "gone")  # tasks must live on what the object store gives them
        events.append(ev)

    remote = run_backtest(config(*GRID), data, on_event, executor="ray")
    assert not data.exists()
    _same(local, remote)
    jobs = [e for e in events if e.get("event") == "job"]
    assert len(jobs) == 4 and all(e["ok"] for e in jobs)
    folds = [e for e in events if "fold" in e]
    assert len(folds) == sum(len(r.fold_info) for r in remote)  # progress still counts folds
    assert ray.is_initialized()  # a Ray the caller started is left running


@pytest.mark.usefixtures("cheat_model")
def test_a_failing_ray_task_is_reported_by_name_and_the_others_finish(two_cpu_ray, tmp_path):
    """``cheat`` is registered only in this process, so building it fails in the Ray worker."""
    from cryptocast.errors import PartialFailure
    from cryptocast.evaluate.backtest import run_backtest

    data = store(tmp_path / "data", make_ohlcv(220, "1d", start="2021-01-01", seed=4))
    cfg = config(
        "backtest.models=[cheat, persistence, drift]", "backtest.test_start=2021-06-01",
        "backtest.fold_length=40",
    )  # fmt: skip
    events: list[dict] = []
    with pytest.raises(PartialFailure, match=r"BTC/USDT 1d cheat: .*unknown model 'cheat'") as e:
        run_backtest(cfg, data, events.append, executor="ray")
    assert [r.model for r in e.value.done] == ["persistence", "drift"]
    done = {e["job"][2]: e["ok"] for e in events if e.get("event") == "job"}
    assert done == {"cheat": False, "persistence": True, "drift": True}


def test_on_a_cpu_only_cluster_no_task_asks_for_a_gpu(two_cpu_ray):
    """``train.device: auto`` asks for a GPU only where the cluster has one: a request no node can
    meet would wait forever (tests/test_executor_ray_faults.py: a cluster with a GPU node)."""
    from cryptocast.executor import RayExecutor

    ex = RayExecutor()  # the module's Ray: not owned, left running
    assert ex.gpus_for("auto", True) == 0.0
    assert ex.gpus_for("cpu", True) == ex.gpus_for("cuda", False) == 0.0  # baselines never
    assert ex.gpus_for("cuda", True) == 1.0  # asked for explicitly: the user's call


def test_tune_on_ray_scores_each_trial_as_locally(two_cpu_ray, tmp_path):
    """One Ray task per trial; without pruning, trial k samples the same values (seeded TPE,
    random start-up) and trains the same seeded model, so its score matches the local study's."""
    import optuna

    from cryptocast.tune.study import run_tune
    from tests.test_tune import CANDLES
    from tests.test_tune import config as tune_config

    data = store(tmp_path / "data", CANDLES)
    out = {}
    for ex in ("local", "ray"):
        cfg = tune_config(tmp_path / ex, "tune.trials=3", "tune.pruner=none")
        res = run_tune(cfg, data, executor=ex)
        study = optuna.load_study(study_name=res.study_name, storage=res.storage)
        out[ex] = sorted((t.number, t.params["model.hidden_size"], t.value) for t in study.trials)
    assert len(out["ray"]) == 3
    assert out["local"] == out["ray"]


def test_the_cli_runs_backtest_on_ray(two_cpu_ray, tmp_path):
    from tests.conftest import TINY_CONFIG
    from tests.test_backtest import FAST

    data = store(tmp_path / "data", make_ohlcv(220, "1d", start="2021-01-01", seed=4))
    sets = [a for s in FAST for a in ("--set", s)]
    result = CliRunner().invoke(
        app,
        ["backtest", "--config", str(TINY_CONFIG), *sets, "--data-dir", str(data),
         "--models", "lstm,persistence", "--test-start", "2021-06-01", "--fold-length", "40",
         "--report", str(tmp_path / "report"), "--executor", "ray"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "local ray" in result.output and (tmp_path / "report" / "summary.json").is_file()


def test_without_ray_the_executor_says_how_to_install_it(tmp_path, monkeypatch):
    """Ray made unimportable (as on an install without the extra): one line, exit 2."""
    monkeypatch.setitem(sys.modules, "ray", None)
    data = store(tmp_path / "data", make_ohlcv(220, "1d", start="2021-01-01", seed=4))
    result = CliRunner().invoke(
        app,
        ["backtest", "--data-dir", str(data), "-s", "BTC/USDT", "-t", "1d", "--models",
         "persistence", "--test-start", "2021-06-01", "--fold-length", "40",
         "--report", str(tmp_path / "report"), "--executor", "ray"],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "--executor ray needs Ray, which is not installed: pip install 'cryptocast[ray]'" in (
        result.output
    )
    assert not (tmp_path / "report").exists()
