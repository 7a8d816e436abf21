"""MLflow tracking (``tracking`` section, cryptocast/api/tracking.py) against a real local store.

Every test logs through the commands or the API into one SQLite-backed MLflow store in a temp
folder and reads the runs back with MLflow's own client: no mocks. Runs are tiny (one epoch,
persistence and drift backtests, a two-trial study) so the file takes seconds beyond MLflow's
import.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cryptocast.cli import app
from tests.conftest import TINY_CONFIG, TINY_NET, make_ohlcv
from tests.test_backtest import store

pytest.importorskip(
    "mlflow", reason="the tracking extra is not installed: pip install '.[tracking]'"
)
pytestmark = pytest.mark.usefixtures("restore_torch_threads")

runner = CliRunner()
CANDLES = make_ohlcv(260, "1d", start="2021-01-01", seed=4)
SMALL = [
    *TINY_NET,
    "model.name=lstm",
    "backtest.symbols=[BTC/USDT]",
    "backtest.timeframes=[1d]",
    "backtest.test_start=2021-08-01",
    "backtest.fold_length=20",
]


@pytest.fixture(scope="module")
def mlruns(tmp_path_factory) -> Path:
    """One local store for the module (creating its database is the slow part)."""
    return tmp_path_factory.mktemp("tracking") / "mlruns"


def client_for(mlruns: Path):
    from mlflow.tracking import MlflowClient

    from cryptocast.api.tracking import tracking_uri

    return MlflowClient(tracking_uri=tracking_uri(str(mlruns)))


def only_run(mlruns: Path, experiment: str):
    client = client_for(mlruns)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no experiment {experiment!r} in {mlruns}"
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1, [r.info.run_name for r in runs]
    return client, runs[0]


def on(mlruns: Path, experiment: str) -> list[str]:
    return ["tracking.enabled=true", f"tracking.uri={mlruns}", f"tracking.experiment={experiment}"]


def metrics_versions() -> dict[str, str]:
    from cryptocast.training.runs import package_versions

    return package_versions()


def invoke(*args: str):
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def test_train_logs_config_params_every_metric_and_the_run_folder(tmp_path, mlruns):
    from cryptocast.api import train

    data = store(tmp_path / "data", CANDLES)
    sets = [*SMALL, f"output.runs_dir={tmp_path / 'runs'}", *on(mlruns, "t-train")]
    result = train(TINY_CONFIG, sets, data_dir=data)

    client, run = only_run(mlruns, "t-train")
    assert run.info.run_id == result.tracking_run
    assert run.info.status == "FINISHED"
    assert run.info.run_name == result.run_dir.name
    assert run.data.tags["cryptocast.command"] == "train"
    assert run.data.tags["cryptocast.config_hash"] == result.config.hash()
    assert run.data.tags["version.torch"] == metrics_versions()["torch"]
    # the config as params, one per dotted key
    params = run.data.params
    assert params["train.epochs"] == "1"
    assert params["model.name"] == "lstm"
    assert params["data.symbol"] == "BTC/USDT"
    assert params["tracking.experiment"] == "t-train"
    # every number of metrics.json, the loss history as steps over the epochs
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    logged = run.data.metrics
    for key, value in metrics["test"].items():
        if isinstance(value, float):
            assert logged[f"test.{key}"] == pytest.approx(value), key
    assert logged["best_epoch"] == metrics["best_epoch"]
    assert logged["n_windows.train"] == metrics["n_windows"]["train"]
    history = client.get_metric_history(run.info.run_id, "history.val_loss")
    assert [(m.step, m.value) for m in history] == [
        (h["epoch"], pytest.approx(h["val_loss"])) for h in metrics["history"]
    ]
    # the run folder, checkpoint included
    files = {f.path for f in client.list_artifacts(run.info.run_id, "run")}
    assert files == {"run/checkpoint.pt", "run/config.yaml", "run/metrics.json"}


def test_backtest_logs_every_summary_metric_per_series_and_model_and_the_report(tmp_path, mlruns):
    data = store(tmp_path / "data", CANDLES)
    report = tmp_path / "report"
    sets = [*SMALL, "backtest.models=[persistence, drift]", *on(mlruns, "t-backtest")]
    args = ["backtest", "-c", str(TINY_CONFIG), "--data-dir", str(data), "--report", str(report)]
    out = invoke(*args, *[a for s in sets for a in ("--set", s)]).output
    assert "logged to MLflow experiment 't-backtest'" in out

    client, run = only_run(mlruns, "t-backtest")
    assert run.data.tags["cryptocast.command"] == "backtest"
    assert run.data.params["backtest.models"] == '["persistence", "drift"]'
    summary = json.loads((report / "summary.json").read_text())
    logged = run.data.metrics
    for rec in summary["results"]:
        for key, value in rec.items():
            if isinstance(value, float) and value == value:  # finite numbers; NaN is left out
                name = f"BTC-USDT_1d/{rec['model']}/{key}"
                assert logged[name] == pytest.approx(value), name
    assert logged["BTC-USDT_1d/persistence/skill_rmse"] == 0
    files = {f.path for f in client.list_artifacts(run.info.run_id, "report")}
    assert {"report/report.md", "report/summary.json", "report/forecasts.parquet"} <= files
    assert any(p.endswith(".png") for p in files), files


def test_tune_logs_the_study_best_params_and_every_trial_score(tmp_path, mlruns):
    pytest.importorskip("optuna")
    data = store(tmp_path / "data", CANDLES)
    sets = [
        *SMALL,
        "backtest.models=[lstm, persistence]",
        "tune.folds=2",
        "tune.trials=2",
        "tune.space={model.hidden_size: [4, 8]}",
        f"output.runs_dir={tmp_path / 'runs'}",
        *on(mlruns, "t-tune"),
    ]
    args = ["tune", "-c", str(TINY_CONFIG), "--data-dir", str(data)]
    out = invoke(*args, *[a for s in sets for a in ("--set", s)]).output
    assert "logged to MLflow experiment 't-tune'" in out

    client, run = only_run(mlruns, "t-tune")
    assert run.data.tags["cryptocast.command"] == "tune"
    assert run.data.params["best.model.hidden_size"] in ("4", "8")
    trials = client.get_metric_history(run.info.run_id, "trial/rmse")
    assert sorted(m.step for m in trials) == [0, 1]
    assert run.data.metrics["best/rmse"] == min(m.value for m in trials)
    assert run.data.metrics["trials/complete"] == 2
    files = {f.path for f in client.list_artifacts(run.info.run_id)}
    assert {"best.yaml", "history.png"} <= files


def test_tracking_is_off_by_default_and_never_moves_a_config_hash():
    from cryptocast.config.schema import load_config

    base = load_config(TINY_CONFIG)
    assert base.tracking.enabled is False
    tracked = load_config(TINY_CONFIG, ["tracking.enabled=true", "tracking.uri=elsewhere"])
    # turning tracking on orphans no trained run and changes no report's config hash
    assert (tracked.hash(), tracked.training_hash()) == (base.hash(), base.training_hash())


def test_an_unwritable_tracking_folder_fails_before_any_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    data = store(tmp_path / "data", CANDLES)
    args = ["train", "-c", str(TINY_CONFIG), "--data-dir", str(data)]
    sets = [*SMALL, f"output.runs_dir={tmp_path / 'runs'}", "tracking.enabled=true"]
    sets.append(f"tracking.uri={blocker / 'mlruns'}")
    result = runner.invoke(app, [*args, *[a for s in sets for a in ("--set", s)]])
    assert result.exit_code == 9, result.output
    assert "tracking.uri" in result.output
    assert not (tmp_path / "runs").exists()  # no training started


def test_without_mlflow_installed_the_error_names_the_extra(tmp_path):
    code = (
        "import sys; sys.modules['mlflow'] = None\n"  # what an environment without it imports
        "from cryptocast.api.tracking import check_tracking\n"
        "from cryptocast.config.schema import load_config\n"
        "from cryptocast.errors import ConfigError\n"
        "try:\n"
        "    check_tracking(load_config(None, ['tracking.enabled=true']))\n"
        "except ConfigError as err:\n"
        "    print(err)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'cryptocast[tracking]'" in out.stdout
