"""A replay (``CRYPTOCAST_NOW`` in the past) must not use a model trained past the forecast's
origin: it would be scored on closes it learnt from. Refused, with the dates, not logged."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from cryptocast.cli import app
from cryptocast.data.store import series_path, write_parquet_atomic
from cryptocast.errors import CheckpointError
from cryptocast.forecasting.job import forecast_series
from tests.conftest import FORECAST_CANDLES, FORECAST_DAY_D

runner = CliRunner()
D = FORECAST_DAY_D
TS = FORECAST_CANDLES["timestamp"]


def _after(i: int) -> pd.Timestamp:
    return TS.iloc[i] + pd.Timedelta("1D5min")


def test_a_replay_before_the_model_was_trained_is_refused(forecast_run, data_dir):
    # the run learnt candles up to D; replay the day D-10 with the candles of that day
    write_parquet_atomic(
        FORECAST_CANDLES.iloc[: D - 9], series_path(data_dir, "binance", "BTC/USDT", "1d")
    )
    log = series_path(data_dir, "binance", "BTC/USDT", "1d", kind="forecasts")
    res = runner.invoke(
        app,
        ["forecast", "--run", str(forecast_run), "--data-dir", str(data_dir), "--no-fetch",
         "--allow-old-model"],
        env={"COLUMNS": "300", "CRYPTOCAST_NOW": _after(D - 10).isoformat()},
    )  # fmt: skip
    assert res.exit_code == 7, res.output
    text = " ".join(res.output.split())
    assert f"trained on candles up to {TS.iloc[D]:%Y-%m-%d}" in text, text
    assert f"{TS.iloc[D - 10]:%Y-%m-%d}" in text and "old)" not in text, text
    assert not log.exists()
    # a wall clock after training but a store behind it: the origin is still before training
    with pytest.raises(CheckpointError, match="trained on candles up to"):
        forecast_series(forecast_run, data_dir, fetch=False, now=_after(D), allow_stale=True)
    assert not log.exists()
    # the candles the run was trained on, on the day after: accepted
    write_parquet_atomic(
        FORECAST_CANDLES.iloc[: D + 1], series_path(data_dir, "binance", "BTC/USDT", "1d")
    )
    assert forecast_series(forecast_run, data_dir, fetch=False, now=_after(D)).added == 1
