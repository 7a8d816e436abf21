"""The forecast log's lock covers the log write, not the network fetch: two cron entries for
different runs of one series, started together against a slow exchange, both succeed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pandas as pd

from cryptocast.data.store import read_ohlcv, series_path, write_parquet_atomic
from cryptocast.forecasting.log import read_log
from tests.conftest import FORECAST_CANDLES, FORECAST_DAY_D, REPO
from tests.fake_exchange import FakeExchange

D = FORECAST_DAY_D
TS = FORECAST_CANDLES["timestamp"]


def test_two_runs_of_one_series_do_not_collide_on_a_slow_fetch(forecast_run, data_dir, tmp_path):
    # a second run of the same series (the cron entry of another model): its own run id
    other = tmp_path / "runs" / "tiny-other-model"
    shutil.copytree(forecast_run, other)
    write_parquet_atomic(
        FORECAST_CANDLES.iloc[:D], series_path(data_dir, "binance", "BTC/USDT", "1d")
    )
    with FakeExchange() as fx:
        fx.set_series("BTC", "USDT", "1d", FORECAST_CANDLES.iloc[: D + 1])
        # every exchange request answers after 1.5 s (under the client's 2 s local timeout):
        # each fetch takes several seconds, longer than the 2 s the runs wait for the log
        fx.set_faults(1.0, kinds=("slow",), slow_s=1.5)
        env = {**os.environ, "PYTHONPATH": str(REPO),
               "CRYPTOCAST_NOW": (TS.iloc[D] + pd.Timedelta("1D5min")).isoformat()}  # fmt: skip
        cmd = [sys.executable, "-m", "cryptocast", "forecast", "--data-dir", str(data_dir),
               "--exchange-url", fx.url, "--lock-timeout", "2"]  # fmt: skip
        pipe = subprocess.PIPE
        procs = [
            subprocess.Popen([*cmd, "--run", str(r)], env=env, cwd=REPO, stdout=pipe, stderr=pipe)
            for r in (forecast_run, other)
        ]
        outs = [p.communicate(timeout=240) for p in procs]
        slow = fx.fault_counts["slow"]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert slow >= 4  # both fetched (at least an exchangeInfo and a klines request each)
    log = read_log(series_path(data_dir, "binance", "BTC/USDT", "1d", kind="forecasts"))
    assert sorted(log["run_id"]) == sorted([forecast_run.name, other.name])
    assert (log["last_candle"] == TS.iloc[D]).all()
    stored = read_ohlcv(series_path(data_dir, "binance", "BTC/USDT", "1d"))
    pd.testing.assert_frame_equal(stored, FORECAST_CANDLES.iloc[: D + 1].reset_index(drop=True))
