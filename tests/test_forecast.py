"""The forecast library: log dedup/scoring/metrics, staleness, one prediction path with backtest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryptocast.config.timeframes import timeframe_delta
from cryptocast.data.store import series_path, write_parquet_atomic
from cryptocast.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    ModelTooOldError,
    StaleDataError,
)
from cryptocast.forecasting.freshness import missing_closed_candle, window_gap
from cryptocast.forecasting.job import check_spacing, forecast_series, now_utc, parse_grace
from cryptocast.forecasting.log import (
    LOG_COLUMNS,
    append_rows,
    coerce_log,
    empty_log,
    fill_realised,
    live_metrics,
    read_log,
)
from tests.conftest import FORECAST_CANDLES, FORECAST_DAY_D, make_ohlcv

D = FORECAST_DAY_D
DAY = pd.Timedelta("1D")


def clock_after(i: int) -> pd.Timestamp:
    """Five minutes after candle ``i`` closed."""
    return FORECAST_CANDLES["timestamp"].iloc[i] + DAY + pd.Timedelta("5min")


def _store(data_dir: Path, candles: pd.DataFrame, timeframe: str = "1d") -> None:
    write_parquet_atomic(candles, series_path(data_dir, "binance", "BTC/USDT", timeframe))


def _rows(last: str, run: str, steps: int = 2, pred: float = 101.0) -> pd.DataFrame:
    t = pd.Timestamp(last, tz="UTC")
    return coerce_log(
        pd.DataFrame(
            {
                "made_at": t + DAY,
                "last_candle": t,
                "step": np.arange(1, steps + 1),
                "target_time": [t + DAY * h for h in range(1, steps + 1)],
                "model": "m",
                "run_id": run,
                "config_hash": "abc",
                "last_close": 100.0,
                "predicted_close": pred,
                "predicted_return": pred / 100.0 - 1,
                "stale": False,
                "realised_close": np.nan,
                "error": np.nan,
            }
        )
    )


# ---- the log -----------------------------------------------------------------------------------
def test_append_is_idempotent_per_candle_run_and_step():
    log, added = append_rows(empty_log(), _rows("2021-01-01", "r1"))
    assert added == 2 and list(log.columns) == LOG_COLUMNS
    log, added = append_rows(log, _rows("2021-01-01", "r1"))
    assert added == 0 and len(log) == 2
    log, added = append_rows(log, _rows("2021-01-01", "r2"))  # another run: its own rows
    assert added == 2
    log, added = append_rows(log, _rows("2021-01-02", "r1", steps=3))  # a new candle: new rows
    assert added == 3 and len(log) == 7


def test_read_log_refuses_a_corrupt_file(tmp_path):
    bad = tmp_path / "log.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(DataError, match="forecast log .* unreadable"):
        read_log(bad)
    assert read_log(tmp_path / "absent.parquet").empty


def test_scoring_fills_stored_targets_and_compares_with_persistence():
    log, _ = append_rows(empty_log(), _rows("2021-01-01", "r1", steps=2, pred=101.0))
    candles = make_ohlcv(3, "1d", start="2021-01-01")
    candles["close"] = [100.0, 102.0, 99.0]
    # only the step-1 target (2021-01-02) is stored if the third candle is missing
    log1, filled = fill_realised(log, candles.iloc[:2])
    assert filled == 1 and log1["realised_close"].isna().sum() == 1
    log2, filled = fill_realised(log1, candles)
    assert filled == 1
    assert log2["realised_close"].tolist() == [102.0, 99.0]
    assert log2["error"].tolist() == [1.0, -2.0]  # realised - predicted
    m = live_metrics(log2)["m"]
    assert m["n"] == 2
    assert m["mae"] == pytest.approx(1.5) and m["persistence_mae"] == pytest.approx(1.5)
    assert m["directional_accuracy"] == pytest.approx(0.5)  # up: right, down: wrong
    assert np.isnan(m["persistence_directional_accuracy"])
    _, again = fill_realised(log2, candles)
    assert again == 0


def test_clock_and_grace_parsing(monkeypatch):
    monkeypatch.setenv("CRYPTOCAST_NOW", "2021-02-03 00:05")
    assert now_utc() == pd.Timestamp("2021-02-03 00:05", tz="UTC")
    assert now_utc("2020-01-01T00:00:00Z") == pd.Timestamp("2020-01-01", tz="UTC")
    with pytest.raises(ConfigError, match="not an ISO date"):
        now_utc("yesterday-ish")
    with pytest.raises(ConfigError, match="CRYPTOCAST_NOW.*not an ISO date"):
        now_utc("02/03/2021")
    assert parse_grace(None, "1h") == pd.Timedelta("6min")
    assert parse_grace("30min", "1d") == pd.Timedelta("30min")
    with pytest.raises(ConfigError, match="--grace"):
        parse_grace("soon", "1d")


def test_spacing_check_catches_hourly_candles_for_a_daily_model():
    check_spacing(make_ohlcv(50, "1d"), "1d", "x")
    with pytest.raises(CheckpointError, match="trained on 1d"):
        check_spacing(make_ohlcv(50, "1h"), "1d", "binance BTC/USDT 1d")


# ---- staleness: a candle that closed more than `grace` ago is missing -------------------------
@pytest.mark.parametrize(("timeframe", "stale_minutes"), [("1d", 1440 - 145), ("1h", 60 - 7)])
def test_clock_sweep_over_one_candle_after_a_close(timeframe, stale_minutes):
    """Every minute across one full candle after a close (grace: a tenth of a candle).

    A complete store (the candle that just closed is stored) is fresh at every offset; a store
    missing that candle is stale exactly once more than the grace has passed since it closed.
    """
    step = timeframe_delta(timeframe)
    grace = parse_grace(None, timeframe)  # 2h 24min / 6min
    last_closed = pd.Timestamp("2023-03-14", tz="UTC")  # opened 00:00, closed 00:00 + step
    closed_at = last_closed + step
    stale = 0
    for minute in range(int(step / pd.Timedelta("1min"))):
        now = closed_at + pd.Timedelta(minutes=minute)
        assert missing_closed_candle(last_closed, now, timeframe, grace) is None, now
        missing = missing_closed_candle(last_closed - step, now, timeframe, grace)
        assert (missing is not None) == (now - closed_at > grace), now
        if missing is not None:
            assert missing == (last_closed, closed_at)
            stale += 1
    assert stale == stale_minutes  # stale from grace + 1 minute to the end of the candle


@pytest.mark.parametrize("hour", ["3h", "12h", "23h59min"])
def test_complete_daily_store_is_fresh_at_any_hour(forecast_run, data_dir, hour):
    _store(data_dir, FORECAST_CANDLES.iloc[: D + 1])
    now = FORECAST_CANDLES["timestamp"].iloc[D] + DAY + pd.Timedelta(hour)
    res = forecast_series(forecast_run, data_dir, fetch=False, now=now)
    assert res.added == 1 and not res.stale


# ---- the job (no fetch) -------------------------------------------------------------------------
def test_stale_by_clock_writes_nothing_unless_allowed(forecast_run, data_dir):
    _store(data_dir, FORECAST_CANDLES.iloc[: D + 1])
    log_path = series_path(data_dir, "binance", "BTC/USDT", "1d", kind="forecasts")
    # candle D+1 closed at TS[D] + 2 days, 3h ago (grace 2h 24min), and is not stored
    late = FORECAST_CANDLES["timestamp"].iloc[D] + 2 * DAY + pd.Timedelta("3h")
    with pytest.raises(StaleDataError) as err:
        forecast_series(forecast_run, data_dir, fetch=False, now=late)
    day = f"{FORECAST_CANDLES['timestamp'].iloc[D] + DAY:%Y-%m-%d}"
    assert (
        f"binance BTC/USDT 1d: stale data at {late:%Y-%m-%d} 03:00 UTC: the 1d candle opened "
        f"{day} 00:00 closed at {late:%Y-%m-%d} 00:00 UTC, 3h ago, more than the 2h 24min grace"
    ) in str(err.value)
    assert not log_path.exists()
    # a longer grace makes the late clock acceptable
    ok = forecast_series(forecast_run, data_dir, fetch=False, now=late, grace="4h")
    assert ok.added == 1 and not ok.stale
    log_path.unlink()
    res = forecast_series(forecast_run, data_dir, fetch=False, now=late, allow_stale=True)
    assert res.stale and res.added == 1
    assert read_log(log_path)["stale"].tolist() == [True]


def test_forecast_equals_the_backtest_prediction_for_the_same_window(forecast_run, data_dir):
    """Same window, same model: Predictor.from_prepared (backtest) == the logged forecast."""
    from cryptocast.config.schema import load_config
    from cryptocast.training.checkpoint import load_checkpoint
    from cryptocast.training.inference import Predictor
    from cryptocast.training.runs import refit_data

    _store(data_dir, FORECAST_CANDLES.iloc[: D + 1])
    res = forecast_series(forecast_run, data_dir, fetch=False, now=clock_after(D))
    logged = read_log(res.log_path)
    assert logged["last_candle"].tolist() == [FORECAST_CANDLES["timestamp"].iloc[D]]

    cfg = load_config(forecast_run / "config.yaml")
    data, df = refit_data(cfg, data_dir)  # the deployed weights are the refit on every row
    model, _ = load_checkpoint(forecast_run / "checkpoint.pt")
    backtest = Predictor.from_prepared(model, data).predict_rows(
        data.X, data.close, np.array([len(df) - 1])
    )
    np.testing.assert_allclose(logged["predicted_close"].to_numpy(), backtest[0], rtol=1e-12)
    assert logged["last_close"].iloc[0] == FORECAST_CANDLES["close"].iloc[D]


def test_feature_list_mismatch_is_a_checkpoint_error(forecast_run, data_dir, tmp_path):
    import torch

    payload = torch.load(forecast_run / "checkpoint.pt", weights_only=True)
    payload["meta"]["features_config"]["calendar"] = False  # drops the day-of-week columns
    bad_run = tmp_path / "runs" / "edited-run"
    bad_run.mkdir(parents=True)
    torch.save(payload, bad_run / "checkpoint.pt")
    _store(data_dir, FORECAST_CANDLES.iloc[: D + 1])
    with pytest.raises(CheckpointError, match="feature list differs"):
        forecast_series(bad_run, data_dir, fetch=False, now=clock_after(D))
    assert not (data_dir / "forecasts").exists() or not any(
        (data_dir / "forecasts").rglob("*.parquet")
    )


def test_durations_in_messages_read_as_people_write_them():
    from cryptocast.forecasting.job import human_duration

    assert human_duration(pd.Timedelta("2h24min")) == "2h 24min"
    assert human_duration(pd.Timedelta("6min")) == "6min"
    assert human_duration(pd.Timedelta("1h")) == "1h"
    assert human_duration(pd.Timedelta("3D5min")) == "3d 0h 5min"
    assert human_duration(pd.Timedelta(0)) == "0min"


# ---- model age ----------------------------------------------------------------------------------
def test_a_model_older_than_max_model_age_is_refused_before_any_work(forecast_run, data_dir):
    from cryptocast.config.schema import ForecastConfig

    _store(data_dir, FORECAST_CANDLES.iloc[: D + 1])
    trained = FORECAST_CANDLES["timestamp"].iloc[D]  # the refit learnt up to the last candle
    ok = forecast_series(forecast_run, data_dir, fetch=False, now=clock_after(D))
    assert ok.trained_until == trained and ok.model_age == DAY + pd.Timedelta("5min")
    ok.log_path.unlink()
    # 14 days + 1 minute later (a daily model's default limit is 14 days); allow_stale so that
    # only the age can refuse
    late = trained + 14 * DAY + pd.Timedelta("1min")
    with pytest.raises(
        ModelTooOldError, match="14d 0h 1min before .* older than forecast.max_model_age 14d"
    ):
        forecast_series(forecast_run, data_dir, fetch=False, now=late, allow_stale=True)
    assert ModelTooOldError.exit_code == 10
    res = forecast_series(forecast_run, data_dir, fetch=False, now=late, allow_stale=True,
                          allow_old_model=True)  # fmt: skip
    assert res.added == 1 and res.model_age == 14 * DAY + pd.Timedelta("1min")
    longer = ForecastConfig(max_model_age="30D")
    res = forecast_series(
        forecast_run, data_dir, fetch=False, now=late, allow_stale=True, forecast_cfg=longer
    )
    assert res.added == 0  # allowed by the longer limit; the candle was logged just above
    with pytest.raises(ModelTooOldError, match="max_model_age 2d"):
        forecast_series(forecast_run, data_dir, fetch=False, now=trained + 3 * DAY,
                        forecast_cfg=ForecastConfig(max_model_age="2D"))  # fmt: skip


def test_default_max_model_age_is_14_candles_and_at_least_3_days():
    from cryptocast.forecasting.freshness import max_model_age

    assert max_model_age(None, "1d") == pd.Timedelta("14D")
    assert max_model_age(None, "1h") == pd.Timedelta("3D")
    assert max_model_age(None, "1w") == pd.Timedelta("98D")
    assert max_model_age("36h", "1h") == pd.Timedelta("36h")


# ---- a window across an exchange outage -----------------------------------------------------------
def test_a_window_spanning_a_gap_is_refused_unless_allowed(forecast_run, data_dir):
    # 3 candles missing 5 candles before the end: inside the 16-candle window (gap_tolerance 0)
    _store(data_dir, FORECAST_CANDLES.iloc[: D + 1].drop(index=range(D - 7, D - 4)))
    log_path = series_path(data_dir, "binance", "BTC/USDT", "1d", kind="forecasts")
    after = f"{FORECAST_CANDLES['timestamp'].iloc[D - 4]:%Y-%m-%d}"
    with pytest.raises(DataError) as err:
        forecast_series(forecast_run, data_dir, fetch=False, now=clock_after(D))
    msg = str(err.value)
    assert f"spans 3 missing candle(s) before {after} 00:00" in msg
    assert "more than features.gap_tolerance 0" in msg and "--allow-gaps" in msg
    assert "leaves the window in 11 candle(s)" in msg  # then it precedes the first row
    assert not log_path.exists()
    res = forecast_series(forecast_run, data_dir, fetch=False, now=clock_after(D), allow_gaps=True)
    assert res.added == 1 and res.gap_reason is not None
    assert read_log(log_path)["gap"].tolist() == [True]


def test_a_gap_older_than_the_window_does_not_count(forecast_run, data_dir):
    _store(data_dir, FORECAST_CANDLES.iloc[: D + 1].drop(index=range(D - 40, D - 37)))
    res = forecast_series(forecast_run, data_dir, fetch=False, now=clock_after(D))
    assert res.added == 1 and res.gap_reason is None
    assert read_log(res.log_path)["gap"].tolist() == [False]


def test_window_gap_uses_the_training_rule():
    """Same rows as windows.window_ends: a gap before the window's first row does not count."""
    table = pd.DataFrame({"gap_before": [0, 5, 0, 0, 2, 0, 0]})
    assert window_gap(table, 3, 0) is None  # window rows 4..6; row 4's gap precedes row 4
    assert window_gap(table, 4, 0) == (4, 2)
    assert window_gap(table, 4, 2) is None
    assert window_gap(table, 7, 2) == (1, 5)


def test_an_old_log_without_the_gap_column_reads_as_no_gap(tmp_path):
    old = _rows("2021-01-01", "r1").drop(columns=["gap"])
    path = tmp_path / "old.parquet"
    old.to_parquet(path)
    assert read_log(path)["gap"].tolist() == [False, False]


def test_the_gap_hint_works_an_import_fills_the_hole(forecast_run, data_dir, tmp_path):
    """The refusal names `fetch --import`; importing the missing candles (the import only adds
    candles, never changes stored ones) makes the same forecast go through without --allow-gaps."""
    from cryptocast.data.importers import import_path

    _store(data_dir, FORECAST_CANDLES.iloc[: D + 1].drop(index=range(D - 7, D - 4)))
    with pytest.raises(DataError, match="cryptocast fetch --import FILE"):
        forecast_series(forecast_run, data_dir, fetch=False, now=clock_after(D))
    hole = tmp_path / "BTC-USDT_1d.parquet"
    FORECAST_CANDLES.iloc[D - 7 : D - 4].reset_index(drop=True).to_parquet(hole)
    (report,) = import_path(data_dir, hole, now=clock_after(D))
    assert report["new_candles"] == 3
    res = forecast_series(forecast_run, data_dir, fetch=False, now=clock_after(D))
    assert res.added == 1 and res.gap_reason is None
