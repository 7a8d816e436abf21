"""Grid progress (``cryptocast.cli.grid_progress``): counts, seconds per fold, ETA, plain lines."""

from __future__ import annotations

import pytest

from cryptocast.cli.grid_progress import GridProgress


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _fold(i: int, seconds: float, model: str = "lstm", retrained: bool = True) -> dict:
    return {"symbol": "BTC/USDT", "timeframe": "1h", "model": model, "fold": i,
            "retrained": retrained, "warm_start": i > 0, "seconds": seconds}  # fmt: skip


def test_eta_is_wall_time_per_fold_times_the_folds_left():
    clock = Clock()
    grid = GridProgress(clock)
    assert grid.update({"event": "plan", "jobs": 2, "folds": 8}) == "plan"
    assert grid.eta is None and grid.seconds_per_fold is None
    clock.t += 10.0
    assert grid.update(_fold(0, 9.0)) == "fold"
    clock.t += 10.0
    grid.update(_fold(1, 3.0))
    # 2 folds in 20 s of wall time: 6 left -> 60 s; each fold's own time averages 6 s
    assert grid.eta == pytest.approx(60.0)
    assert grid.seconds_per_fold == pytest.approx(6.0)
    assert grid.update({"event": "job", "job": ("BTC/USDT", "1h", "lstm")}) == "job"
    line = grid.line()
    assert "fold 2/8" in line and "BTC/USDT 1h lstm fold 1, refit warm" in line
    assert "3.0 s; mean 6.0 s/fold" in line and "jobs 1/2" in line and "eta 1:00" in line


def test_parallel_workers_shorten_the_eta_not_the_seconds_per_fold():
    clock = Clock()
    grid = GridProgress(clock)
    grid.update({"event": "plan", "jobs": 4, "folds": 4})
    clock.t += 10.0  # two workers each finished a 10 s fold
    grid.update(_fold(0, 10.0))
    grid.update(_fold(0, 10.0, model="gru"))
    assert grid.seconds_per_fold == pytest.approx(10.0)
    assert grid.eta == pytest.approx(10.0)
    assert grid.update({"event": "other"}) is None


def test_the_cli_prints_one_plain_line_per_fold_when_piped(data_dir):
    from typer.testing import CliRunner

    from cryptocast.cli import app
    from tests.conftest import TINY_CONFIG, make_ohlcv
    from tests.test_backtest import store

    store(data_dir, make_ohlcv(200, "1d", start="2021-01-01", seed=3))
    args = ["backtest", "--config", str(TINY_CONFIG), "--data-dir", str(data_dir),
            "--models", "persistence,drift", "-s", "BTC/USDT", "-t", "1d",
            "--test-start", "2021-05-01", "--fold-length", "30",
            "--report", str(data_dir / "report")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = [x for x in result.output.splitlines() if x.startswith("fold ")]
    assert "plan: 2 jobs, 6 folds" in result.output
    assert len(lines) == 6 and lines[-1].startswith("fold 6/6") and "eta 0:00" in lines[-1]
    assert "s/fold" in lines[0] and "\x1b[" not in result.output  # no terminal escapes
