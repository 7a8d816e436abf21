"""A run folder's checkpoint.pt must be the one its metrics.json describes: a checkpoint copied in
from another run (another series, another model) is refused, naming both, never used silently."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cryptocast.cli import app
from cryptocast.data.store import series_path, write_parquet_atomic
from tests.conftest import FORECAST_CANDLES, FORECAST_DAY_D, TINY_CONFIG, make_ohlcv

runner = CliRunner()
D = FORECAST_DAY_D
ETH = make_ohlcv(D + 1, "1d", seed=7, price=2000.0)  # the same days as the BTC run's candles
NOW = (FORECAST_CANDLES["timestamp"].iloc[D] + pd.Timedelta("1D5min")).isoformat()


def _train(root: Path, symbol: str, model: str) -> Path:
    """A real run of configs/tiny.yaml on ``symbol`` with ``model`` (1 epoch, no refit)."""
    from cryptocast.config.schema import load_config
    from cryptocast.evaluate.holdout import train_run

    data = root / "data"
    write_parquet_atomic(ETH, series_path(data, "binance", symbol, "1d"))
    overrides = [f"data.symbol={symbol}", f"model.name={model}", "train.epochs=1",
                 "train.refit_all=false", "train.device=cpu", f"output.runs_dir={root / 'runs'}"]  # fmt: skip
    return train_run(load_config(TINY_CONFIG, overrides), data).run_dir


@pytest.fixture(scope="module")
def other_runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("other_runs")
    return {
        "eth": _train(root / "eth", "ETH/USDT", "performer_bilstm"),
        "lstm": _train(root / "lstm", "BTC/USDT", "lstm"),
    }


@pytest.mark.parametrize(
    ("donor", "named"),
    [("eth", ["ETH/USDT", "BTC/USDT"]), ("lstm", ["lstm", "performer_bilstm"])],
)
def test_a_checkpoint_swapped_in_from_another_run_is_refused_naming_both(
    forecast_run, other_runs, data_dir, tmp_path, donor, named
):
    from cryptocast.training.checkpoint import read_checkpoint

    write_parquet_atomic(
        FORECAST_CANDLES.iloc[: D + 1], series_path(data_dir, "binance", "BTC/USDT", "1d")
    )
    write_parquet_atomic(ETH, series_path(data_dir, "binance", "ETH/USDT", "1d"))
    runs = tmp_path / "runs"
    victim = runs / forecast_run.name
    shutil.copytree(forecast_run, victim)
    shutil.copyfile(other_runs[donor] / "checkpoint.pt", victim / "checkpoint.pt")
    donor_hash = read_checkpoint(victim / "checkpoint.pt")["meta"]["training_hash"]
    run_hash = read_checkpoint(forecast_run / "checkpoint.pt")["meta"]["training_hash"]
    common = ["--data-dir", str(data_dir), "--no-fetch", "--allow-old-model"]  # donors: no refit
    sets = [
        "--set",
        "train.epochs=1",
        "--set",
        "train.device=cpu",
        "--set",
        f"output.runs_dir={runs}",
    ]  # how the fixture trained it
    for args in (["--run", str(victim)], ["--config", str(TINY_CONFIG), *sets]):
        res = runner.invoke(
            app, ["forecast", *args, *common], env={"COLUMNS": "300", "CRYPTOCAST_NOW": NOW}
        )
        assert res.exit_code == 7, res.output
        line = " ".join(res.output.split())
        assert "does not belong to run" in line and victim.name in line, line
        assert all(name in line for name in named), line
        assert donor_hash in line and run_hash in line, line
    for symbol in ("BTC/USDT", "ETH/USDT"):
        assert not series_path(data_dir, "binance", symbol, "1d", kind="forecasts").exists()
    # the run's own checkpoint back: it forecasts again
    shutil.copyfile(forecast_run / "checkpoint.pt", victim / "checkpoint.pt")
    res = runner.invoke(app, ["forecast", "--run", str(victim), *common],
                        env={"COLUMNS": "300", "CRYPTOCAST_NOW": NOW})  # fmt: skip
    assert res.exit_code == 0, res.output
