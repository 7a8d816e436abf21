"""``cryptocast train`` through the CLI: a complete run directory, and one-line config errors."""

from __future__ import annotations

import json
import shutil
from importlib.metadata import version
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from cryptocast.cli import app
from tests.conftest import TINY_CONFIG, make_ohlcv

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("restore_torch_threads")


def _run(*args: str):
    return runner.invoke(app, ["train", *args], env={"COLUMNS": "200"})


@pytest.fixture
def daily_btc(data_dir: Path, shared_ohlcv: Path) -> Path:
    """data_dir holding the reference daily BTC/USDT candles."""
    dest = data_dir / "ohlcv" / "binance"
    dest.mkdir(parents=True)
    shutil.copy(shared_ohlcv / "BTC-USDT_1d.parquet", dest / "BTC-USDT_1d.parquet")
    return data_dir


def test_tiny_config_end_to_end_writes_a_complete_run(daily_btc, tmp_path):
    from cryptocast.config.schema import load_config
    from cryptocast.training.checkpoint import read_checkpoint
    from cryptocast.training.inference import Predictor

    runs = tmp_path / "runs"
    result = _run(
        "--config", str(TINY_CONFIG), "--data-dir", str(daily_btc),
        "--set", f"output.runs_dir={runs}", "--set", "train.device=cpu",
        "--set", "train.num_threads=1",  # 2 threads crawl when other jobs share the 2 cores
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "epoch   3" in result.output and "run saved to" in result.output
    assert "refit on all" in result.output  # train.refit_all: the deployed weights saw every row
    (run_dir,) = list(runs.iterdir())
    assert run_dir.name.startswith("tiny-")  # configs/tiny.yaml's output.name
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "checkpoint.pt",
        "config.yaml",
        "metrics.json",
    ]
    cfg = load_config(
        TINY_CONFIG, [f"output.runs_dir={runs}", "train.device=cpu", "train.num_threads=1"]
    )
    assert yaml.safe_load((run_dir / "config.yaml").read_text()) == cfg.to_dict()

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert [row["epoch"] for row in metrics["history"]] == [1, 2, 3]
    assert all(row["train_loss"] > 0 and row["val_loss"] > 0 for row in metrics["history"])
    assert metrics["config_hash"] == cfg.hash() and metrics["test"]["rmse"] > 0

    meta = read_checkpoint(run_dir / "checkpoint.pt")["meta"]
    assert meta["config_hash"] == cfg.hash() and meta["config"] == cfg.to_dict()
    assert meta["n_features"] == len(meta["feature_names"]) > 10
    assert "rsi_14" in meta["feature_names"] and "close" not in meta["feature_names"]
    assert len(meta["x_scaler"]["center"]) == meta["n_features"]
    assert len(meta["y_scaler"]["center"]) == 1
    assert meta["versions"]["torch"] == version("torch")
    assert {"cryptocast", "torch", "numpy", "pandas"} <= set(meta["versions"])
    assert meta["data"]["symbol"] == "BTC/USDT" and meta["data"]["timeframe"] == "1d"
    assert meta["data"]["first"].startswith("2018-") and meta["data"]["last"].startswith("2023-06")
    assert meta["lookback"] == 16 and meta["horizon"] == 1
    assert meta["trained_until"] == "2023-06-30 00:00:00+00:00" and meta["weights"] == "refit_all"

    # the run directory alone is enough to forecast
    from cryptocast.features.table import build_features

    df = build_features(daily_btc, "binance", "BTC/USDT", "1d", cfg.features)
    pred = Predictor.from_checkpoint(run_dir / "checkpoint.pt").predict_frame(df, [len(df) - 1])
    assert pred.shape == (1, 1) and 0.5 < pred[0, 0] / df["close"].iloc[-1] < 1.5


def _synthetic_btc(data_dir: Path) -> None:
    from cryptocast.data.store import series_path, write_parquet_atomic

    path = series_path(data_dir, "binance", "BTC/USDT", "1d")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_parquet_atomic(make_ohlcv(300), path)


@pytest.mark.parametrize(
    ("override", "needles"),
    [
        ("model.foo=1", ["--set model.foo=1", "unknown key model.foo"]),
        ("train.epochs=abc", ["--set train.epochs=abc:", "integer"]),
        ("features.lookback=0", ["--set features.lookback=0:"]),
        ("model.name=perfomer", ["--set model.name=perfomer", "performer_bilstm, persistence"]),
        ("model.n_heads=3", ["--set model.n_heads=3: model.d_model", "model.n_heads"]),
        ("split.val=0.5", ["--set split.val=0.5: split.train + split.val"]),
        ("train.device=cuda", ["train.device=cuda", "no CUDA GPU"]),
        ("data.start=01/02/2023", ["--set data.start=01/02/2023:", "not an ISO date", "YYYY"]),
        ("data.end=2023-13-01", ["--set data.end=2023-13-01:", "month must be in 1..12"]),
        ("split.val_start=2022/01/01", ["--set split.val_start=", "not an ISO date"]),
    ],
)
def test_bad_configs_fail_in_one_line_before_any_run_dir(data_dir, tmp_path, override, needles):
    if "cuda" in override and torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    _synthetic_btc(data_dir)
    runs = tmp_path / "runs"
    result = _run(
        "--config", str(TINY_CONFIG), "--data-dir", str(data_dir),
        "--set", f"output.runs_dir={runs}", "--set", override,
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output  # nothing before it
    assert all(n in lines[0] for n in needles), result.output
    assert "Value error" not in lines[0] and str(TINY_CONFIG.name) not in lines[0]
    assert not runs.exists()


def test_missing_config_file_and_missing_data_are_one_line_errors(data_dir, tmp_path):
    result = _run("--config", str(tmp_path / "nope.yaml"), "--data-dir", str(data_dir))
    assert result.exit_code == 2 and "nope.yaml not found" in result.output
    runs = tmp_path / "runs"
    result = _run(
        "--config", str(TINY_CONFIG), "--data-dir", str(data_dir),
        "--set", f"output.runs_dir={runs}",
    )  # fmt: skip
    assert result.exit_code == 3, result.output
    assert "cryptocast fetch --symbol BTC/USDT --timeframe 1d" in result.output.replace("\n", "")
    assert not runs.exists()


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "piped"])
def test_progress_is_a_bar_on_a_terminal_and_one_line_per_epoch_when_piped(terminal):
    import io

    from rich.console import Console

    from cryptocast.cli.progress import EpochProgress

    out = io.StringIO()
    console = Console(file=out, force_terminal=terminal, width=80)
    row = {"train_loss": 1.0, "val_loss": 1.0, "lr": 1e-3, "seconds": 0.1}
    with EpochProgress(console, "training lstm", quiet=False) as progress:
        for epoch in (1, 2):
            for b in range(1, 4):
                progress.on_batch(epoch, b, 3)
            progress.on_epoch({"epoch": epoch, **row})
    text = out.getvalue()
    assert text.count("training lstm") == 1
    assert text.count("epoch   1  train") == 1 and text.count("epoch   2  train") == 1
    assert ("batches" in text) is terminal  # the bar only where someone watches it
    if not terminal:
        assert text.splitlines() == [
            "training lstm",
            "  epoch   1  train 1.00000  val 1.00000  lr 1.00e-03  0.1s",
            "  epoch   2  train 1.00000  val 1.00000  lr 1.00e-03  0.1s",
        ]


def test_nothing_is_printed_before_a_data_error(data_dir, tmp_path):
    result = _run(
        "-c", str(TINY_CONFIG), "--data-dir", str(data_dir), "--set", f"output.runs_dir={tmp_path}"
    )
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert result.exit_code == 3 and len(lines) == 1 and lines[0].startswith("error:"), (
        result.output
    )
