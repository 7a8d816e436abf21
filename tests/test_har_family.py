"""The HAR family (issue 22 part 4): harq, har_semi, har_cj, har_x against independent least
squares, the rolling window, the automatic bias correction, and a CLI backtest of every new
volatility model. Measures here come from hourly candles (``rv_source: 1h``), the fallback the
family must run on; tests/test_realized.py checks the 5-minute measures themselves."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cryptocast.config.schema import FeaturesConfig
from cryptocast.errors import ConfigError
from tests.conftest import TINY_CONFIG
from tests.test_volatility import VOL_FAST, daily_from, make_hourly

pytestmark = pytest.mark.usefixtures("restore_torch_threads")

NEW_MODELS = ["harq", "har_semi", "har_cj", "har_x", "gbm_vol"]


def _prepared(window: int | None = None, cross: bool = True, seed: int = 4):
    from cryptocast.features.table import compute_features
    from cryptocast.features.windows import prepare

    hourly = make_hourly(260, seed=seed)
    f = FeaturesConfig(
        target="realized_vol", indicators=[], horizon=2, lookback=10,
        rv_cross="ETH/USDT" if cross else None,
    )  # fmt: skip
    extra = {"cross": make_hourly(260, seed=seed + 100)} if cross else {}
    df = compute_features(daily_from(hourly), f, "1d", fine=hourly, **extra)
    n = len(df)
    return df, prepare(df, f, {"train": (0, int(n * 0.7)), "val": (int(n * 0.7), n)}, True)


@pytest.fixture(scope="module")
def prepared():
    return _prepared()


def _fit(name: str, data, **model):
    from cryptocast.config.schema import ModelConfig, TrainConfig
    from cryptocast.models.registry import build_model
    from cryptocast.training.loop import fit

    m = build_model(ModelConfig(name=name, **model), len(data.feature_names), 2, 10)
    assert fit(m, data, TrainConfig(device="cpu")).trained is False
    return m


def _lstsq(df, rows: np.ndarray, regressors: np.ndarray) -> np.ndarray:
    A = np.column_stack([np.ones(rows.size), regressors])
    y = df[["target_1", "target_2"]].to_numpy()[rows]
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    return coef


def _fit_rows(data) -> np.ndarray:
    return np.sort(np.concatenate([data.ends["train"], data.ends["val"]]))


def _hand_regressors(df, name: str, rows: np.ndarray) -> np.ndarray:
    col = {c: df[c].to_numpy()[rows] for c in df.columns if c != "timestamp"}
    if name == "harq":  # the daily coefficient varies with sqrt(RQ)/RV
        d = col["log_rv_d"]
        return np.column_stack([d, col["rq_rel_d"] * d, col["log_rv_w"], col["log_rv_m"]])
    if name == "har_semi":
        keys = ["log_rs_pos_d", "log_rs_neg_d", "log_rv_w", "log_rv_m"]
    elif name == "har_cj":
        keys = ["log_cv_d", "log_cv_w", "log_cv_m", "jv_d", "jv_w", "jv_m"]
    else:
        keys = ["log_rv_d", "log_rv_w", "log_rv_m", "x_log_rv_d", "x_log_rv_w", "x_log_rv_m"]
    return np.column_stack([col[k] for k in keys])


@pytest.mark.parametrize("name", ["harq", "har_semi", "har_cj", "har_x"])
def test_coefficients_equal_an_independent_least_squares_solve(name, prepared):
    df, data = prepared
    model = _fit(name, data)
    rows = _fit_rows(data)
    expect = _lstsq(df, rows, _hand_regressors(df, name, rows))
    np.testing.assert_allclose(model.coef.numpy(), expect, rtol=1e-4, atol=1e-5)
    # and the forecast is that regression evaluated at the origin
    from cryptocast.training.loop import predict_scaled

    ends = data.ends["val"]
    raw = data.y_scaler.inverse_transform(predict_scaled(model, data.X, ends, 10))
    by_hand = expect[0] + _hand_regressors(df, name, ends) @ expect[1:]
    np.testing.assert_allclose(raw, by_hand, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["har", "harq", "har_cj"])
def test_the_rolling_window_uses_only_the_last_n_fit_rows(name):
    df, data = _prepared(cross=False, seed=8)
    window = 60
    model = _fit(name, data, har_window=window)
    rows = _fit_rows(data)[-window:]
    expect = _lstsq(df, rows, _hand_regressors(df, name, rows) if name != "har" else
                    df[["log_rv_d", "log_rv_w", "log_rv_m"]].to_numpy()[rows])  # fmt: skip
    np.testing.assert_allclose(model.coef.numpy(), expect, rtol=1e-4, atol=1e-5)
    # scrambling every label before the window changes nothing
    early = _fit_rows(data)[:-window]
    rng = np.random.default_rng(0)
    data.Y[early] = rng.permutation(data.Y[early])
    again = _fit(name, data, har_window=window)
    np.testing.assert_array_equal(again.coef.numpy(), model.coef.numpy())
    full = _fit(name, data)  # without the window it reads them
    assert not np.allclose(full.coef.numpy(), model.coef.numpy())


@pytest.mark.parametrize("name", ["harq", "har_semi", "har_cj", "har_x"])
def test_family_members_get_the_log_bias_correction(name, prepared):
    from cryptocast.features.targets import get_target, normal_factor
    from cryptocast.training.inference import Predictor
    from cryptocast.training.loop import predict_scaled

    df, data = prepared
    model = _fit(name, data)
    assert get_target("realized_vol").corrects(model)
    p = Predictor.from_prepared(model, data)
    rows = np.concatenate([data.ends["train"], data.ends["val"]])
    fitted = data.y_scaler.inverse_transform(predict_scaled(model, data.X, rows, 10))
    y = data.y_scaler.inverse_transform(data.Y[rows].astype("float64"))
    np.testing.assert_allclose(p.variance_factor, normal_factor(y - fitted), rtol=1e-9)
    assert np.all(p.variance_factor > 1)


def test_har_x_without_a_cross_symbol_is_a_config_error():
    _, data = _prepared(cross=False)
    with pytest.raises(ConfigError, match="features.rv_cross"):
        _fit("har_x", data)


def test_cross_symbol_auto_and_self():
    from cryptocast.features.volatility import cross_symbol

    assert cross_symbol("auto", "ETH/USDT") == "BTC/USDT"
    assert cross_symbol("auto", "BTC/USDT") == "ETH/USDT"
    with pytest.raises(ConfigError, match="the series itself"):
        cross_symbol("LTC/USDT", "LTC/USDT")


def test_a_price_target_refuses_the_family():
    from cryptocast.features.targets import get_target

    for name in NEW_MODELS:
        with pytest.raises(ConfigError, match="realized_vol"):
            get_target("log_return").check_models([name])


def test_cli_backtest_runs_every_new_model_into_summary_json(data_dir, tmp_path):
    from cryptocast.cli import app
    from cryptocast.data.store import series_path, write_parquet_atomic

    hourly = make_hourly(240, seed=6)
    write_parquet_atomic(hourly, series_path(data_dir, "binance", "ETH/USDT", "1h"))
    write_parquet_atomic(daily_from(hourly), series_path(data_dir, "binance", "ETH/USDT", "1d"))
    btc = make_hourly(240, seed=16)  # the cross symbol: only its rv_source candles are read
    write_parquet_atomic(btc, series_path(data_dir, "binance", "BTC/USDT", "1h"))
    report = tmp_path / "report"
    sets = [a for s in [*VOL_FAST, "features.rv_cross=auto"] for a in ("--set", s)]
    result = CliRunner().invoke(
        app,
        [
            "backtest", "--config", str(TINY_CONFIG), *sets, "--data-dir", str(data_dir),
            "--symbol", "ETH/USDT", "--timeframe", "1d", "--report", str(report),
            "--models", ",".join(["har", *NEW_MODELS]), "--test-start", "2021-06-01",
            "--fold-length", "45",
        ],
        env={"COLUMNS": "220"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((report / "summary.json").read_text())
    recs = {r["model"]: r for r in summary["results"]}
    for name in ["har", *NEW_MODELS]:
        assert name in recs, name
        assert np.isfinite(recs[name]["qlike"]) and 0.2 < recs[name]["bias_ratio"] < 5


def test_a_har_x_run_forecasts_through_the_daily_job(data_dir, tmp_path):
    """The daily job reads the ``features.rv_cross`` symbol's candles as the backtest does (it
    raised a DataError before: the forecast built its features without them)."""
    from cryptocast.config.schema import load_config
    from cryptocast.data.store import series_path, write_parquet_atomic
    from cryptocast.evaluate.holdout import train_run
    from cryptocast.forecasting.job import forecast_series

    hourly = make_hourly(140, seed=6)
    day_d = pd.Timestamp("2021-05-10", tz="UTC")
    hourly = hourly[hourly["timestamp"] < day_d + pd.Timedelta("1D")]
    write_parquet_atomic(hourly, series_path(data_dir, "binance", "ETH/USDT", "1h"))
    write_parquet_atomic(daily_from(hourly), series_path(data_dir, "binance", "ETH/USDT", "1d"))
    btc = make_hourly(140, seed=16)
    write_parquet_atomic(btc, series_path(data_dir, "binance", "BTC/USDT", "1h"))
    cfg = load_config(
        TINY_CONFIG,
        [
            *VOL_FAST, "features.rv_cross=auto", "model.name=har_x", "data.symbol=ETH/USDT",
            f"output.runs_dir={tmp_path / 'runs'}",
        ],
    )  # fmt: skip
    run = train_run(cfg, data_dir).run_dir
    now = day_d + pd.Timedelta("1D") + pd.Timedelta("1h")
    res = forecast_series(run, data_dir, fetch=False, now=now)
    assert res.added == 1 and 0.05 < res.rows["predicted_vol"].iloc[0] < 5
