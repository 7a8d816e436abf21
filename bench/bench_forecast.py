"""Cold-start latency of ``cryptocast forecast --no-fetch`` for one series, process start to exit.

A tiny model (configs/tiny.yaml, 1 epoch, CPU) is trained first into a temp folder on the daily
BTC reference candles (synthetic candles in quick mode or when ../shared is absent). Each timed
run is a fresh ``python -m cryptocast forecast`` process that loads the checkpoint, computes the
features of the whole stored series, predicts and appends to a fresh log (removed before each run,
so every run does the full write path a daily cron job does). For scale, the same figure for
``python -c "import torch"`` and ``cryptocast --help`` (which imports no torch) is recorded.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from bench.common import REPO, SHARED_OHLCV, config, main, median_time, record

NAME = "forecast"


def _candles(quick: bool) -> tuple[pd.DataFrame, str]:
    ref = SHARED_OHLCV / "BTC-USDT_1d.parquet"
    if not quick and ref.is_file():
        return pd.read_parquet(ref), "reference BTC/USDT 1d"
    from tests.conftest import make_ohlcv

    return make_ohlcv(300, "1d", start="2020-01-01", seed=0), "synthetic 1d"


def _train(root: Path, candles: pd.DataFrame) -> Path:
    from cryptocast.data.store import series_path, write_parquet_atomic
    from cryptocast.evaluate.holdout import train_run

    write_parquet_atomic(candles, series_path(root / "data", "binance", "BTC/USDT", "1d"))
    overrides = ["train.epochs=1", "train.device=cpu", f"output.runs_dir={root / 'runs'}"]
    return train_run(config("tiny", overrides), root / "data").run_dir


def _timed(cmd: list[str], env: dict[str, str], repeats: int, before=None) -> tuple[float, list]:
    """Median wall time of a subprocess; one untimed warm-up (OS file cache) unless quick."""

    def once() -> None:
        if before is not None:
            before()
        out = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}): {out.stderr.strip()}")

    return median_time(once, repeats=repeats, warmup=0 if repeats == 1 else 1)


def run(quick: bool) -> list[dict]:
    repeats = 1 if quick else 5
    candles, label = _candles(quick)
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        run_dir = _train(root, candles)
        now = candles["timestamp"].iloc[-1] + pd.Timedelta("1D") + pd.Timedelta("5min")
        env = {**os.environ, "CRYPTOCAST_NOW": now.isoformat(), "PYTHONPATH": str(REPO)}
        log = root / "data" / "forecasts" / "binance" / "BTC-USDT_1d.parquet"
        forecast_cmd = [sys.executable, "-m", "cryptocast", "forecast", "--run", str(run_dir),
                        "--data-dir", str(root / "data"), "--no-fetch", "--quiet"]  # fmt: skip
        med, times = _timed(forecast_cmd, env, repeats, lambda: log.unlink(missing_ok=True))
        assert log.is_file()
        torch_med, torch_times = _timed([sys.executable, "-c", "import torch"], env, repeats)
        help_med, help_times = _timed([sys.executable, "-m", "cryptocast", "--help"], env, repeats)
    params = {"data": label, "candles": len(candles), "config": "tiny.yaml, 1 epoch"}

    def rec(figure: str, value: float, ts: list[float]) -> dict:
        return record(figure, value, "s", params, times=[round(t, 3) for t in ts], repeats=repeats)

    return [
        rec("forecast --no-fetch cold start", med, times),
        rec("python -c 'import torch'", torch_med, torch_times),
        rec("cryptocast --help", help_med, help_times),
    ]


if __name__ == "__main__":
    main(NAME, run, __doc__, "synthetic candles, one timed run", echo="json")
