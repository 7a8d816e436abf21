"""Calibration in the daily job (issue 24, part 3): a run trained with ``backtest.calibration``
carries its conformity scores (from rows before its test origin only), ``forecast`` logs raw and
calibrated quantiles, ACI's level replayed from the log equals the backtest's at the same origin,
``--score`` reports both, an uncalibrated quantile run says so, and older logs still read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cryptocast.cli import app
from cryptocast.data.store import series_path, write_parquet_atomic
from cryptocast.forecasting.job import forecast_series
from cryptocast.forecasting.log import LOG_COLUMNS, read_log
from tests.conftest import FORECAST_CANDLES, TINY_CONFIG

LEVELS = [0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95]
TS = FORECAST_CANDLES["timestamp"]
DAY = pd.Timedelta("1D")
START = 360  # the run learns candles up to this row; the replay forecasts from here on
runner = CliRunner()

pytestmark = pytest.mark.usefixtures("restore_torch_threads")


def _store(data_dir: Path, upto: int, candles: pd.DataFrame = FORECAST_CANDLES) -> None:
    write_parquet_atomic(
        candles.iloc[: upto + 1], series_path(data_dir, "binance", "BTC/USDT", "1d")
    )


def _cfg(tmp_path: Path, *extra: str):
    from cryptocast.config.schema import load_config

    return load_config(
        TINY_CONFIG,
        [
            "model.name=rw_ewma", f"model.quantiles={LEVELS}", "train.loss=pinball",
            "train.device=cpu", "train.num_threads=1", "train.refit_all=false",
            f"output.runs_dir={tmp_path / 'runs'}", *extra,
        ],
    )  # fmt: skip


def _train(data_dir: Path, tmp_path: Path, *extra: str) -> Path:
    from cryptocast.evaluate.holdout import train_run

    return train_run(_cfg(tmp_path, *extra), data_dir).run_dir


def _now(row: int) -> pd.Timestamp:
    return TS.iloc[row] + DAY + pd.Timedelta("5min")


def _replay(run: Path, data_dir: Path, days: int, **kw):
    for day in range(START, START + days):
        _store(data_dir, day)
        res = forecast_series(run, data_dir, fetch=False, now=_now(day), allow_old_model=True, **kw)
    return res


def _q(text: str) -> np.ndarray:
    return np.array(list(json.loads(text).values()))


def test_aci_level_after_a_replay_equals_the_backtests(data_dir, tmp_path):
    """N daily forecasts (clock replayed), then the level ACI uses at origin N+1 and its
    calibrated quantiles equal the backtest's ACI over the same origins, computed from the
    validated model's validation windows and the stored closes, outcomes fed back h+1 rows late."""
    from cryptocast.evaluate.conformal import aci_scores, calibration_set, pair_scores
    from cryptocast.features.windows import prepare, split_bounds
    from cryptocast.training.inference import Predictor
    from cryptocast.training.runs import load_feature_table

    H, days, gamma = 2, 25, 0.05
    extra = (f"features.horizon={H}", "backtest.calibration=aci", f"backtest.aci_gamma={gamma}")
    _store(data_dir, START)
    run = _train(data_dir, tmp_path, *extra)
    res = _replay(run, data_dir, days)
    assert res.calibration["method"] == "aci"
    assert res.calibration["n_origins"] == days - 1
    assert res.calibration["n_outcomes"] == (days - 1) + (days - 2)  # steps 1 and 2 known

    # the backtest's side, from the same candles: the validated model's calibration set
    cfg = _cfg(tmp_path, *extra)
    df = load_feature_table(cfg, data_dir)  # every candle of the replay is stored now
    f = cfg.features
    train_df = df[df["timestamp"] <= TS.iloc[START]].reset_index(drop=True)
    segments = split_bounds(train_df, cfg.split, f.lookback, f.horizon)
    data = prepare(train_df, f, segments, cfg.split.embargo)  # as `cryptocast train` does
    pred = Predictor.from_checkpoint(run / "checkpoint.pt")
    close = df["close"].to_numpy("float64")
    cal_q, cal_y = calibration_set(pred, data.X, close, data.ends["val"], H)
    # the replay's origins in the full table, and what the model forecast at each
    full = prepare(df, f, {"train": (0, len(df))}, False)
    rows = np.asarray(df.index[df["timestamp"].isin(TS.iloc[START : START + days])])
    _, q = pred.predict_distribution(full.X, close, rows)
    zq = np.log(q / close[rows][:, None, None])
    zy = np.full((days, H), np.nan)
    for i, r in enumerate(rows):
        for h in range(1, H + 1):
            if r + h <= rows[-1]:  # stored by the last replayed day
                zy[i, h - 1] = np.log(close[r + h] / close[r])
    out, used = aci_scores(
        zq, zy, rows, [pair_scores(cal_q, cal_y, LEVELS)], np.zeros(days, np.int64), LEVELS, gamma
    )
    alpha90 = res.calibration["alpha"]["0.9"]
    np.testing.assert_allclose(alpha90, used[-1, 0], rtol=0, atol=1e-12)
    assert alpha90 != [0.1, 0.1]  # the level moved: the replay did feed outcomes back
    got = np.log(np.stack([_q(t) for t in res.rows["calibrated_quantiles"]]) / res.last_close)
    np.testing.assert_allclose(got, out[-1], rtol=0, atol=1e-9)


def test_cqr_scores_in_the_run_come_only_from_rows_before_its_test_origin(data_dir, tmp_path):
    """Scrambling every candle from the test segment on leaves the stored scores as they were;
    scrambling the validation rows changes them (so the check can fail)."""
    from cryptocast.features.windows import split_bounds
    from cryptocast.training.runs import load_feature_table

    def scores(candles: pd.DataFrame, name: str) -> dict:
        _store(data_dir, START, candles)
        run = _train(data_dir, tmp_path / name, "backtest.calibration=cqr")
        meta = Predictor.from_checkpoint(run / "checkpoint.pt").meta
        return meta["calibration"]

    from cryptocast.training.inference import Predictor

    _store(data_dir, START)
    cfg = _cfg(tmp_path, "backtest.calibration=cqr")
    df = load_feature_table(cfg, data_dir)
    f = cfg.features
    b = split_bounds(df, cfg.split, f.lookback, f.horizon)["test"][0]
    origin = df["timestamp"].iloc[b]  # no test window ends before this row

    def scrambled(from_ts: pd.Timestamp) -> pd.DataFrame:
        c = FORECAST_CANDLES.copy()
        after = (c["timestamp"] >= from_ts).to_numpy()
        k = np.random.default_rng(7).uniform(0.5, 2.0, int(after.sum()))
        for col in ("open", "high", "low", "close"):
            c.loc[after, col] = c.loc[after, col].to_numpy() * k
        return c

    base = scores(FORECAST_CANDLES, "a")
    assert base["method"] == "cqr" and base["n_scores"] > 10
    assert pd.Timestamp(base["last_row_read"]) < origin
    assert scores(scrambled(origin), "b")["scores"] == base["scores"]
    val_start = df["timestamp"].iloc[split_bounds(df, cfg.split, f.lookback, f.horizon)["val"][0]]
    assert scores(scrambled(val_start), "c")["scores"] != base["scores"]


def test_raw_and_calibrated_quantiles_in_the_log_and_the_score_output(data_dir, tmp_path):
    _store(data_dir, START)
    run = _train(data_dir, tmp_path, "backtest.calibration=cqr")
    _replay(run, data_dir, 6)
    _store(data_dir, START + 6)
    env = {"COLUMNS": "400", "CRYPTOCAST_NOW": _now(START + 6).isoformat()}
    args = ["forecast", "--run", str(run), "--data-dir", str(data_dir), "--no-fetch", "--score"]
    out = runner.invoke(app, [*args, "--allow-old-model"], env=env)
    assert out.exit_code == 0, out.output
    text = " ".join(out.output.split())
    assert "(calibrated cqr)" in text and "90% " in text, text
    assert "live rw_ewma calibrated (cqr): 6 scored" in text, text
    log = read_log(series_path(data_dir, "binance", "BTC/USDT", "1d", kind="forecasts"))
    assert list(log.columns) == LOG_COLUMNS and len(log) == 7
    assert (log["calibration"] == "cqr").all()
    raw = np.stack([_q(t) for t in log["quantiles"]])
    cal = np.stack([_q(t) for t in log["calibrated_quantiles"]])
    np.testing.assert_allclose(raw[:, 3], cal[:, 3], rtol=1e-12)  # the median is not moved
    assert not np.allclose(raw[:, [0, -1]], cal[:, [0, -1]])  # the interval is
    js = runner.invoke(app, [*args, "--allow-old-model", "--json"], env=env)
    live = json.loads(js.output)[0]["live"]["rw_ewma"]
    for key in ("calibrated_coverage_90", "raw_coverage_90", "calibrated_crps", "raw_crps"):
        assert np.isfinite(live[key]), key
    assert live["n_calibrated"] == 6 and live["raw_crps"] == pytest.approx(live["crps"])


def test_a_quantile_run_without_calibration_says_uncalibrated(data_dir, tmp_path):
    _store(data_dir, START)
    run = _train(data_dir, tmp_path)
    env = {"COLUMNS": "400", "CRYPTOCAST_NOW": _now(START).isoformat()}
    args = ["forecast", "--run", str(run), "--data-dir", str(data_dir), "--no-fetch"]
    out = runner.invoke(app, [*args, "--allow-old-model"], env=env)
    assert out.exit_code == 0, out.output
    assert "(uncalibrated)" in " ".join(out.output.split()), out.output
    log = read_log(series_path(data_dir, "binance", "BTC/USDT", "1d", kind="forecasts"))
    assert log["calibration"].tolist() == ["none"] and log["calibrated_quantiles"].tolist() == [""]


def test_an_old_log_without_the_calibration_columns_still_reads_and_is_extended(data_dir, tmp_path):
    _store(data_dir, START)
    run = _train(data_dir, tmp_path, "backtest.calibration=aci")
    _replay(run, data_dir, 3)
    path = series_path(data_dir, "binance", "BTC/USDT", "1d", kind="forecasts")
    old = pd.read_parquet(path).drop(columns=["calibrated_quantiles", "calibration"])
    old.to_parquet(path)  # as a release before calibration wrote it
    assert list(read_log(path).columns) == LOG_COLUMNS
    _store(data_dir, START + 3)
    res = forecast_series(run, data_dir, fetch=False, now=_now(START + 3), allow_old_model=True)
    assert res.added == 1 and res.calibration["n_origins"] == 3  # the old rows were replayed
    stored = pd.read_parquet(path)
    assert list(stored.columns) == LOG_COLUMNS and len(stored) == 4
    assert stored["calibration"].tolist() == ["", "", "", "aci"]
    assert stored["calibrated_quantiles"].iloc[-1] != ""


def test_a_retrained_run_of_the_same_config_continues_the_aci_level(data_dir, tmp_path):
    """A weekly retrain must not restart ACI: the new run replays the old run's logged origins
    (with the old run's own scores, as the backtest's ACI runs on across its retrains), so at the
    same origin both runs use the same level."""
    extra = ("backtest.calibration=aci", "backtest.aci_gamma=0.05")
    _store(data_dir, START)
    old = _train(data_dir, tmp_path, *extra)
    _replay(old, data_dir, 10)
    _store(data_dir, START + 10)
    new = _train(data_dir, tmp_path, *extra)  # the same config, trained a week later
    assert (new / "calibration.json").is_file() and new != old
    now = _now(START + 10)
    b = forecast_series(new, data_dir, fetch=False, now=now, allow_old_model=True)
    a = forecast_series(old, data_dir, fetch=False, now=now, allow_old_model=True)
    assert b.calibration["n_origins"] == a.calibration["n_origins"] == 10
    nominal = {k: [round(1 - float(k), 9)] for k in a.calibration["alpha"]}
    assert b.calibration["alpha"] == a.calibration["alpha"] != nominal  # and it moved
