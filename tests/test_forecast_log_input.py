"""The forecast log as hand-edited input: a repeated key is scored once and reported, a cell of
the wrong type is a one-line error naming the file and row, a bad ``--lock-timeout`` is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cryptocast.cli import app
from cryptocast.data.store import series_path, write_parquet_atomic
from cryptocast.forecasting.log import coerce_log, read_log
from tests.conftest import FORECAST_CANDLES, FORECAST_DAY_D

runner = CliRunner()
D = FORECAST_DAY_D
TS = FORECAST_CANDLES["timestamp"]
NOW = (TS.iloc[D] + pd.Timedelta("1D5min")).isoformat()  # five minutes after candle D closed


def _forecast(*args: str):
    return runner.invoke(app, ["forecast", *args], env={"COLUMNS": "300", "CRYPTOCAST_NOW": NOW})


def _setup(data_dir: Path) -> Path:
    """Candles up to D stored; returns the path of the series' forecast log."""
    write_parquet_atomic(
        FORECAST_CANDLES.iloc[: D + 1], series_path(data_dir, "binance", "BTC/USDT", "1d")
    )
    return series_path(data_dir, "binance", "BTC/USDT", "1d", kind="forecasts")


def _past_forecasts(n: int) -> pd.DataFrame:
    """``n`` one-step forecasts of model ``m`` from the origins D-n-1 .. D-2 (targets stored)."""
    origins = TS.iloc[D - n - 1 : D - 1].reset_index(drop=True)
    last = FORECAST_CANDLES["close"].iloc[D - n - 1 : D - 1].to_numpy()
    return coerce_log(
        pd.DataFrame(
            {
                "made_at": origins + pd.Timedelta("1D5min"),
                "last_candle": origins,
                "step": 1,
                "target_time": origins + pd.Timedelta("1D"),
                "model": "m",
                "run_id": "m-run",
                "config_hash": "abc",
                "last_close": last,
                "predicted_close": last * 1.01,
                "predicted_return": 0.01,
                "stale": False,
                "realised_close": np.nan,
                "error": np.nan,
            }
        )
    )


def test_a_duplicate_key_row_in_the_log_is_scored_once_and_said(forecast_run, data_dir):
    log_path = _setup(data_dir)
    six = _past_forecasts(6)
    hand_edited = pd.concat([six, six.iloc[[2]]], ignore_index=True)  # a row appended twice
    hand_edited.loc[6, "predicted_close"] = 1.0  # the repeat differs: the first one counts
    write_parquet_atomic(hand_edited, log_path)
    res = _forecast("--run", str(forecast_run), "--data-dir", str(data_dir), "--no-fetch",
                    "--score")  # fmt: skip
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "live m: 6 scored (+6 now)" in text, text
    assert "1 row(s) repeating the key" in text and str(log_path) in text, text
    log = read_log(log_path)
    assert len(log) == 7  # the six, plus today's forecast of the run; the repeat is gone
    mine = log[log["model"] == "m"]
    assert mine["realised_close"].notna().all() and len(mine) == 6
    assert mine["predicted_close"].tolist() == six["predicted_close"].tolist()


@pytest.mark.parametrize("bad", ["three", np.nan])
def test_a_log_step_holding_text_or_nan_is_a_one_line_error(forecast_run, data_dir, bad):
    log_path = _setup(data_dir)
    six = _past_forecasts(6)
    # as a hand edit would store it: the column turned text, or float with a hole in it
    edited = six.astype({"step": str if isinstance(bad, str) else float})
    edited.loc[4, "step"] = bad
    log_path.parent.mkdir(parents=True)
    edited.to_parquet(log_path)
    before = log_path.read_bytes()
    res = _forecast("--run", str(forecast_run), "--data-dir", str(data_dir), "--no-fetch")
    assert res.exit_code == 3, res.output
    assert len(res.output.strip().splitlines()) == 1, res.output
    text = " ".join(res.output.split())
    assert str(log_path) in text and "row 4" in text and "step" in text, text
    assert "Traceback" not in res.output
    assert log_path.read_bytes() == before


@pytest.mark.parametrize("value", ["nan", "-1", "inf"])
def test_a_lock_timeout_that_is_not_a_number_of_seconds_is_refused(forecast_run, data_dir, value):
    log_path = _setup(data_dir)
    res = _forecast("--run", str(forecast_run), "--data-dir", str(data_dir), "--no-fetch",
                    "--lock-timeout", value)  # fmt: skip
    assert res.exit_code == 2, res.output
    assert "--lock-timeout" in res.output and value in res.output, res.output
    assert not log_path.exists()
