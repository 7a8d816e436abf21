"""``cryptocast forecast`` end to end against the fake exchange (real ccxt, real subprocesses)."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cryptocast.cli import app
from cryptocast.data.store import read_ohlcv, series_path, write_parquet_atomic
from cryptocast.forecasting.log import coerce_log, log_lock, read_log
from tests.conftest import FORECAST_CANDLES, FORECAST_DAY_D, REPO, make_ohlcv
from tests.fake_exchange import FakeExchange

runner = CliRunner()
D = FORECAST_DAY_D
TS = FORECAST_CANDLES["timestamp"]


def clock_after(i: int) -> str:
    """Five minutes after candle ``i`` closed (ISO)."""
    return (TS.iloc[i] + pd.Timedelta("1D") + pd.Timedelta("5min")).isoformat()


def serve_up_to(fx: FakeExchange, i: int) -> None:
    fx.set_series("BTC", "USDT", "1d", FORECAST_CANDLES.iloc[: i + 1])


def forecast(*args: str, now: str | None = None):
    env = {"COLUMNS": "200", "CRYPTOCAST_NOW": now or ""}
    return runner.invoke(app, ["forecast", *args], env=env)


def log_file(data_dir: Path) -> Path:
    return series_path(data_dir, "binance", "BTC/USDT", "1d", kind="forecasts")


@pytest.fixture
def fx():
    with FakeExchange() as server:
        serve_up_to(server, D)
        yield server


@pytest.fixture
def fast_fetch(monkeypatch):
    monkeypatch.setattr("cryptocast.forecasting.job.FETCH_ATTEMPTS", 1)


def test_day_d_rerun_then_day_d_plus_1_and_score(forecast_run, fx, data_dir):
    common = ["--run", str(forecast_run), "--data-dir", str(data_dir), "--exchange-url", fx.url]
    first = forecast(*common, now=clock_after(D))
    assert first.exit_code == 0, first.output
    assert "binance BTC/USDT 1d" in first.output and "logged" in first.output
    log = read_log(log_file(data_dir))
    assert len(log) == 1 and log["last_candle"].iloc[0] == TS.iloc[D]
    assert log["target_time"].iloc[0] == TS.iloc[D] + pd.Timedelta("1D")
    assert not log["stale"].iloc[0] and log["run_id"].iloc[0] == forecast_run.name
    stored = read_ohlcv(series_path(data_dir, "binance", "BTC/USDT", "1d"))
    pd.testing.assert_frame_equal(stored, FORECAST_CANDLES.iloc[: D + 1].reset_index(drop=True))

    again = forecast(*common, now=clock_after(D))
    assert again.exit_code == 0, again.output
    assert "already logged" in again.output
    assert len(read_log(log_file(data_dir))) == 1

    serve_up_to(fx, D + 1)
    nxt = forecast(*common, "--score", "--json", now=clock_after(D + 1))
    assert nxt.exit_code == 0, nxt.output
    log = read_log(log_file(data_dir))
    assert log["last_candle"].tolist() == [TS.iloc[D], TS.iloc[D + 1]]
    realised = FORECAST_CANDLES["close"].iloc[D + 1]
    assert log["realised_close"].iloc[0] == realised
    assert log["error"].iloc[0] == pytest.approx(realised - log["predicted_close"].iloc[0])
    assert pd.isna(log["realised_close"].iloc[1])  # D+2 is not stored yet
    doc = json.loads(nxt.output)
    assert doc[0]["added"] == 1 and doc[0]["scored"] == 1 and doc[0]["new_candles"] == 1
    live = doc[0]["live"]["performer_bilstm"]
    assert live["n"] == 1
    assert live["persistence_mae"] == pytest.approx(abs(realised - FORECAST_CANDLES["close"][D]))

    quiet = forecast(*common, "--quiet", "--score", now=clock_after(D + 1))
    assert quiet.exit_code == 0 and quiet.output == ""


def test_exchange_down_fails_loudly_and_leaves_the_log_alone(
    forecast_run, fx, data_dir, fast_fetch
):
    # a log from yesterday (by a run of yesterday: this one learnt day D, so a replay of D - 1
    # with it is refused), then today's candle stored by an earlier fetch
    close = float(FORECAST_CANDLES["close"].iloc[D - 1])
    yesterday = {"made_at": pd.Timestamp(clock_after(D - 1)), "last_candle": TS.iloc[D - 1],
                 "step": 1, "target_time": TS.iloc[D], "model": "performer_bilstm",
                 "run_id": "tiny-yesterday", "config_hash": "", "last_close": close,
                 "predicted_close": close, "predicted_return": 0.0, "stale": False,
                 "realised_close": float("nan"), "error": float("nan")}  # fmt: skip
    write_parquet_atomic(coerce_log(pd.DataFrame([yesterday])), log_file(data_dir))
    base = ["--run", str(forecast_run), "--data-dir", str(data_dir)]
    write_parquet_atomic(
        FORECAST_CANDLES.iloc[: D + 1], series_path(data_dir, "binance", "BTC/USDT", "1d")
    )
    before = log_file(data_dir).read_bytes()
    fx.stop()
    down = forecast(*base, "--exchange-url", fx.url, now=clock_after(D))
    assert down.exit_code == 5, down.output
    assert "binance BTC/USDT 1d" in down.output and "fetch from binance failed" in down.output
    assert "--allow-stale" in down.output
    assert log_file(data_dir).read_bytes() == before

    flagged = forecast(*base, "--exchange-url", fx.url, "--allow-stale", now=clock_after(D))
    assert flagged.exit_code == 0, flagged.output
    assert "STALE" in flagged.output
    log = read_log(log_file(data_dir))
    assert log["stale"].tolist() == [False, True]
    assert log["last_candle"].iloc[1] == TS.iloc[D]


def test_two_processes_at_once_log_exactly_one_row(forecast_run, fx, data_dir):
    env = {**os.environ, "CRYPTOCAST_NOW": clock_after(D), "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "cryptocast", "forecast", "--run", str(forecast_run),
           "--data-dir", str(data_dir), "--exchange-url", fx.url, "--lock-timeout", "120"]  # fmt: skip
    procs = [
        subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    text = "".join(o[0].decode() for o in outs)
    assert text.count("already logged") == 1
    log = read_log(log_file(data_dir))
    assert len(log) == 1 and log["last_candle"].iloc[0] == TS.iloc[D]


def test_locked_log_exits_with_a_clear_message(forecast_run, data_dir):
    write_parquet_atomic(
        FORECAST_CANDLES.iloc[: D + 1], series_path(data_dir, "binance", "BTC/USDT", "1d")
    )
    args = ["--run", str(forecast_run), "--data-dir", str(data_dir), "--no-fetch"]
    with log_lock(log_file(data_dir)):
        res = forecast(*args, "--lock-timeout", "0.2", now=clock_after(D))
    assert res.exit_code == 6, res.output
    assert "another cryptocast forecast" in res.output
    assert not log_file(data_dir).exists()


def test_config_uses_the_newest_run_trained_from_that_config(forecast_run, data_dir, tmp_path):
    import shutil
    import time

    from cryptocast.config.schema import load_config

    write_parquet_atomic(
        FORECAST_CANDLES.iloc[: D + 1], series_path(data_dir, "binance", "BTC/USDT", "1d")
    )
    runs = forecast_run.parent
    # a newer run under the same name, trained from another config (its recorded hash differs)
    other = runs / "tiny-29990101-000000"
    shutil.copytree(forecast_run, other)
    metrics = json.loads((other / "metrics.json").read_text())
    metrics["training_hash"] = "0123456789ab"
    (other / "metrics.json").write_text(json.dumps(metrics))
    later = time.time() + 60
    os.utime(other / "checkpoint.pt", (later, later))
    sets = [
        "--set",
        "train.epochs=1",
        "--set",
        "train.device=cpu",
        "--set",
        f"output.runs_dir={runs}",
    ]  # fmt: skip (how the fixture trained it)
    common = ["--data-dir", str(data_dir), "--no-fetch", "--json"]
    res = forecast("--config", str(REPO / "configs/tiny.yaml"), *sets, *common, now=clock_after(D))
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)[0]["run_id"] == forecast_run.name
    # settings that do not change the weights keep the run: another report folder, a max age
    res = forecast("--config", str(REPO / "configs/tiny.yaml"), *sets, *common,
                   "--set", "backtest.report_dir=elsewhere", "--set", "forecast.max_model_age=30D",
                   now=clock_after(D))  # fmt: skip
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)[0]["run_id"] == forecast_run.name
    cfg = load_config(REPO / "configs/tiny.yaml", ["train.epochs=2", f"output.runs_dir={runs}"])
    # another config (2 epochs): no run matches, although runs of that name exist
    res = forecast("--config", str(REPO / "configs/tiny.yaml"), "--set", "train.epochs=2",
                   "--set", f"output.runs_dir={runs}", *common, now=clock_after(D))  # fmt: skip
    assert res.exit_code == 7, res.output
    line = " ".join(res.output.split())
    assert f"no completed run of {REPO / 'configs/tiny.yaml'} --set train.epochs=2" in line
    assert f"(training hash {cfg.training_hash()})" in line and "2 run(s) named tiny-*" in line
    assert f"train it with `cryptocast train --config {REPO / 'configs/tiny.yaml'}" in line
    assert not log_file(data_dir).exists() or len(read_log(log_file(data_dir))) == 1


def test_model_too_old_exits_10_and_every_run_starts_with_the_utc_time(forecast_run, data_dir):
    import re

    write_parquet_atomic(
        FORECAST_CANDLES.iloc[: D + 1], series_path(data_dir, "binance", "BTC/USDT", "1d")
    )
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ "
    args = ["--run", str(forecast_run), "--data-dir", str(data_dir), "--no-fetch"]
    late = (TS.iloc[D] + pd.Timedelta("15D")).isoformat()
    old = forecast(*args, "--allow-stale", now=late)
    assert old.exit_code == 10, old.output
    assert re.match(stamp + r"error: binance BTC/USDT 1d \(tiny-", old.output), old.output
    assert (
        "older than forecast.max_model_age 14d" in old.output and "--allow-old-model" in old.output
    )
    assert not log_file(data_dir).exists()
    ok = forecast(*args, "--allow-stale", "--allow-old-model", now=late)
    assert ok.exit_code == 0, ok.output
    assert re.match(stamp + "binance BTC/USDT 1d: last", ok.output), ok.output
    assert "(model 15d old)" in ok.output


# ---- the checkpoint must match the data ---------------------------------------------------------
def test_daily_checkpoint_with_hourly_data_is_refused(forecast_run, data_dir):
    args = ["--run", str(forecast_run), "--data-dir", str(data_dir), "--no-fetch"]
    res = forecast(*args, "--timeframe", "1h", now=clock_after(D))
    assert res.exit_code == 7 and "trained on 1d candles but 1h" in res.output
    # hourly candles ending a day after the run's last (daily) candle: only the spacing is wrong
    hourly = make_ohlcv(
        400, "1h", start=str(TS.iloc[D] + pd.Timedelta("1D") - pd.Timedelta("399h"))
    )
    write_parquet_atomic(hourly, series_path(data_dir, "binance", "BTC/USDT", "1d"))
    later = (hourly["timestamp"].iloc[-1] + pd.Timedelta("1h")).isoformat()
    res = forecast(*args, now=later)
    assert res.exit_code == 7, res.output
    assert "candles are 1h apart" in res.output and "trained on 1d" in res.output
    assert not log_file(data_dir).exists()


def test_missing_run_and_corrupt_checkpoints_are_one_line_errors(data_dir, tmp_path):
    res = forecast("--run", str(tmp_path / "runs" / "nope"), "--data-dir", str(data_dir))
    assert res.exit_code == 7 and "run directory" in res.output and "not found" in res.output

    empty = tmp_path / "runs" / "unfinished"
    empty.mkdir(parents=True)
    res = forecast("--run", str(empty), "--data-dir", str(data_dir))
    assert res.exit_code == 7 and "has no checkpoint.pt" in res.output

    noise = tmp_path / "runs" / "noise"
    noise.mkdir()
    (noise / "checkpoint.pt").write_bytes(os.urandom(4096))
    res = forecast("--run", str(noise), "--data-dir", str(data_dir))
    assert res.exit_code == 7 and "not a readable cryptocast checkpoint" in res.output
    assert len(res.output.strip().splitlines()) == 1


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_malicious_pickle_checkpoint_is_refused_without_running(data_dir, tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "runs" / "evil"
    evil.mkdir(parents=True)
    (evil / "checkpoint.pt").write_bytes(pickle.dumps({"state_dict": _Exploit(marker)}))
    res = forecast("--run", str(evil), "--data-dir", str(data_dir), "--no-fetch")
    assert res.exit_code == 7, res.output
    assert "checkpoint" in res.output
    assert not marker.exists()


def test_no_run_given_and_partial_failure(forecast_run, data_dir, tmp_path):
    res = forecast("--data-dir", str(data_dir))
    assert res.exit_code == 2 and "--run" in res.output
    write_parquet_atomic(
        FORECAST_CANDLES.iloc[: D + 1], series_path(data_dir, "binance", "BTC/USDT", "1d")
    )
    res = forecast("--run", str(forecast_run), "--run", str(tmp_path / "gone"),
                   "--data-dir", str(data_dir), "--no-fetch", now=clock_after(D))  # fmt: skip
    assert res.exit_code == 8, res.output
    assert "1 of 2 forecasts failed" in res.output
    assert len(read_log(log_file(data_dir))) == 1


def test_exchange_down_with_nothing_stored_is_an_exchange_error(
    forecast_run, fx, data_dir, fast_fetch
):
    fx.stop()
    res = forecast("--run", str(forecast_run), "--data-dir", str(data_dir),
                   "--exchange-url", fx.url, "--allow-stale", now=clock_after(D))  # fmt: skip
    assert res.exit_code == 4, res.output
    assert "binance BTC/USDT 1d: fetch from binance failed and no candles" in res.output
    assert not log_file(data_dir).exists()


def test_every_score_headline_starts_with_the_utc_time():
    """A cron log greps score lines by time: the price and the volatility headline both carry the
    stamp; their quantile/calibration continuation lines are indented under them."""
    import re
    from types import SimpleNamespace

    from cryptocast.cli.forecast_cmd import _score_lines

    price = {"n": 3, "mae": 1.0, "persistence_mae": 1.1, "mape": 0.5, "persistence_mape": 0.6,
             "directional_accuracy": 0.5, "n_quantile": 3, "coverage_90": 0.9,
             "rw_ewma_coverage_90": 0.8, "crps": 0.01, "rw_ewma_crps": 0.011}  # fmt: skip
    vol = {"n": 2, "qlike": 0.4, "persistence_qlike": 0.5, "rmse_vol": 0.1,
           "persistence_rmse_vol": 0.12}  # fmt: skip
    res = SimpleNamespace(series="BTC/USDT 1d", scored=1, live={"lstm": price, "har": vol})
    lines = _score_lines(res)
    stamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ   live ")
    heads = [line for line in lines if not line.startswith("  ")]
    assert len(heads) == 2 and all(stamp.match(line) for line in heads), lines
    assert any("QLIKE 0.4 vs vol_persistence 0.5" in line for line in heads)
