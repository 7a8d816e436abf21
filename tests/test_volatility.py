"""The realized-volatility target: RV, its causality, the vol baselines, QLIKE/MZ and leakage.

Synthetic hourly candles with clustered volatility (log daily vol an AR(1)); daily candles are
aggregated from them, as an exchange does.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryptocast.config.schema import FeaturesConfig
from cryptocast.errors import ConfigError
from tests.conftest import TINY_CONFIG
from tests.test_backtest import FAST, SYMBOL, _Cheat

VOL_FAST = ["features.target=realized_vol", *FAST]

pytestmark = pytest.mark.usefixtures("restore_torch_threads")


@pytest.fixture
def cheat_model():
    """The test-only model ``cheat`` of tests/test_backtest.py: a linear read-out of the origin."""
    from cryptocast.models import registry

    registry.model_names()
    registry.register("cheat")(
        lambda cfg, n_features, horizon, lookback: _Cheat(n_features, horizon)
    )
    yield "cheat"
    registry._BUILDERS.pop("cheat", None)
    registry._TRAINABLE.pop("cheat", None)


def make_hourly(days: int = 200, seed: int = 0, start: str = "2021-01-01") -> pd.DataFrame:
    """Hourly candles whose daily volatility follows a log-AR(1) (so HAR and GARCH have work)."""
    rng = np.random.default_rng(seed)
    log_vol = np.empty(days)
    log_vol[0] = math.log(0.03)
    for d in range(1, days):
        log_vol[d] = math.log(0.03) + 0.9 * (log_vol[d - 1] - math.log(0.03)) + rng.normal(0, 0.3)
    sigma_h = np.repeat(np.exp(log_vol) / math.sqrt(24), 24)
    ret = rng.normal(0, 1, days * 24) * sigma_h
    close = 100.0 * np.exp(np.cumsum(ret))
    open_ = np.concatenate([[100.0], close[:-1]])
    wick = np.abs(rng.normal(0, 0.3, close.size)) * sigma_h
    ts = pd.date_range(start, periods=close.size, freq="1h", tz="UTC")
    return pd.DataFrame(
        {
            "timestamp": ts.astype("datetime64[ns, UTC]"),
            "open": open_,
            "high": np.maximum(open_, close) * np.exp(wick),
            "low": np.minimum(open_, close) * np.exp(-wick),
            "close": close,
            "volume": rng.lognormal(3, 0.5, close.size),
        }
    )


def daily_from(hourly: pd.DataFrame) -> pd.DataFrame:
    g = hourly.groupby(hourly["timestamp"].dt.floor("1D"))
    out = pd.DataFrame(
        {
            "open": g["open"].first(),
            "high": g["high"].max(),
            "low": g["low"].min(),
            "close": g["close"].last(),
            "volume": g["volume"].sum(),
        }
    )
    out.index.name = "timestamp"
    out = out.reset_index()
    out["timestamp"] = out["timestamp"].astype("datetime64[ns, UTC]")
    return out


def store_both(data_dir: Path, hourly: pd.DataFrame) -> Path:
    from cryptocast.data.store import series_path, write_parquet_atomic

    write_parquet_atomic(hourly, series_path(data_dir, "binance", SYMBOL, "1h"))
    write_parquet_atomic(daily_from(hourly), series_path(data_dir, "binance", SYMBOL, "1d"))
    return data_dir


def config(*overrides: str):
    from cryptocast.config.schema import load_config

    return load_config(TINY_CONFIG, [*VOL_FAST, *overrides])


# ---- realized volatility ----------------------------------------------------------------------
def test_rv_of_a_known_series_and_the_missing_hours_rule():
    from cryptocast.features.volatility import daily_realized_vol

    # every hourly log return is +-a: RV of a full day is exactly a * sqrt(24)
    a, days = 0.01, 5
    signs = np.where(np.arange(days * 24 + 1) % 2 == 0, 1.0, -1.0)
    close = 100.0 * np.exp(np.cumsum(a * signs))
    ts = pd.date_range("2021-01-01", periods=close.size, freq="1h", tz="UTC") - pd.Timedelta("1h")
    fine = pd.DataFrame({"timestamp": ts.astype("datetime64[ns, UTC]"), "close": close})
    # Jan 3 loses the 05:00 and 06:00 candles (returns 4->5, 5->6, 6->7 gone: 21 left); Jan 4
    # loses 02:00..09:00 (9 returns gone: 15 left, below the 20 needed)
    day2 = (fine["timestamp"] >= "2021-01-03 05:00") & (fine["timestamp"] <= "2021-01-03 06:00")
    day3 = (fine["timestamp"] >= "2021-01-04 02:00") & (fine["timestamp"] <= "2021-01-04 09:00")
    rv = daily_realized_vol(fine[~(day2 | day3)], "1h", min_count=20).set_index("day")
    full = rv.loc[pd.Timestamp("2021-01-02", tz="UTC")]
    assert full["n"] == 24 and full["rv"] == pytest.approx(a * math.sqrt(24), rel=1e-12)
    part = rv.loc[pd.Timestamp("2021-01-03", tz="UTC")]
    assert part["n"] == 21  # returns 4->5, 5->6, 6->7 lost
    assert part["rv"] == pytest.approx(math.sqrt(24 / 21 * 21 * a * a), rel=1e-12)
    assert np.isnan(rv.loc[pd.Timestamp("2021-01-04", tz="UTC"), "rv"])  # 15 returns < 20


def test_rv_estimates_a_known_volatility():
    from cryptocast.features.volatility import daily_realized_vol

    rng = np.random.default_rng(1)
    sigma_d, days = 0.04, 1500
    ret = rng.normal(0, sigma_d / math.sqrt(24), days * 24)
    ts = pd.date_range("2020-01-01", periods=ret.size, freq="1h", tz="UTC")
    fine = pd.DataFrame(
        {"timestamp": ts.astype("datetime64[ns, UTC]"), "close": np.exp(ret.cumsum())}
    )
    rv = daily_realized_vol(fine).iloc[1:]["rv"].to_numpy()  # day 1 has 23 returns
    # E[RV^2] = sigma^2; sd of one day's RV^2 is sigma^2 sqrt(2/24): the mean is within 1.5 %
    assert np.mean(rv**2) == pytest.approx(sigma_d**2, rel=0.015)


def _table(hourly, **cfg):
    from cryptocast.features.table import compute_features

    f = FeaturesConfig(target="realized_vol", indicators=[], horizon=2, **cfg)
    return compute_features(daily_from(hourly), f, "1d", fine=hourly)


def test_target_reads_only_hours_after_its_origin_and_features_only_hours_before():
    hourly = make_hourly(120, seed=2)
    base = _table(hourly)
    t = 70  # an origin row; its day ends at midnight after base.timestamp[t]
    day_end = base["timestamp"].iloc[t] + pd.Timedelta("1D")
    rng = np.random.default_rng(9)
    feats = [c for c in base.columns if not c.startswith("target_")]

    # (a) scramble every hour before the origin's day ends, except the origin's own close (the
    # last hourly close of day t = the daily close at the origin): its targets do not move
    past = hourly.copy()
    before = past["timestamp"] < day_end
    keep = past.index[before][-1]
    noise = np.exp(rng.normal(0, 0.05, before.sum()))
    for c in ("open", "high", "low", "close"):
        past.loc[before, c] *= noise
    past.loc[keep, "close"] = hourly.loc[keep, "close"]
    past["high"] = past[["open", "high", "close"]].max(axis=1)
    past["low"] = past[["open", "low", "close"]].min(axis=1)
    moved = _table(past)
    np.testing.assert_array_equal(
        moved.loc[t, ["target_1", "target_2"]], base.loc[t, ["target_1", "target_2"]]
    )
    assert not np.allclose(moved.loc[t - 1, "target_1"], base.loc[t - 1, "target_1"])

    # (b) scramble every hour after it: features up to row t do not move, the targets do
    future = hourly.copy()
    after = future["timestamp"] >= day_end
    future.loc[after, "close"] *= np.exp(rng.normal(0, 0.05, after.sum()))
    future["high"] = future[["open", "high", "close"]].max(axis=1)
    future["low"] = future[["open", "low", "close"]].min(axis=1)
    moved = _table(future)
    pd.testing.assert_frame_equal(moved.loc[:t, feats], base.loc[:t, feats])
    assert moved.loc[t, "target_1"] != base.loc[t, "target_1"]


def test_vol_target_refuses_other_timeframes_and_price_baselines(data_dir):
    from cryptocast.evaluate.backtest import validate
    from cryptocast.features.table import compute_features

    hourly = make_hourly(80)
    f = FeaturesConfig(target="realized_vol")
    with pytest.raises(ConfigError, match="1d timeframe"):
        compute_features(hourly, f, "1h", fine=hourly)
    with pytest.raises(ConfigError, match="vol_persistence"):
        validate(config("backtest.models=[har, persistence]"), data_dir)
    with pytest.raises(ConfigError, match="realized_vol"):
        validate(config("features.target=log_return", "backtest.models=[har]"), data_dir)
    with pytest.raises(ConfigError, match="point forecast"):
        validate(config("backtest.models=[har]", "backtest.calibration=cqr"), data_dir)


# ---- scores ----------------------------------------------------------------------------------
def test_qlike_and_mincer_zarnowitz_by_hand():
    from cryptocast.evaluate.volatility import mincer_zarnowitz, qlike_losses, vol_metrics

    # variance ratios 0.25 and 4: 0.25 - ln 0.25 - 1 and 4 - ln 4 - 1
    hand = [0.25 + math.log(4) - 1, 4 - math.log(4) - 1]
    np.testing.assert_allclose(qlike_losses([0.5, 1.0], [1.0, 0.5]), hand, rtol=1e-12)
    m = vol_metrics(np.array([[0.5], [1.0], [0.8]]), np.array([[1.0], [0.5], [0.8]]))
    assert m["qlike"] == pytest.approx(sum(hand) / 3, rel=1e-12)
    assert m["rmse_vol"] == pytest.approx(math.sqrt((0.25 + 0.25 + 0) / 3), rel=1e-12)
    assert vol_metrics(np.array([[0.3], [0.6]]), np.array([[0.3], [0.6]]))["qlike"] == 0.0
    # MZ: realised = 0.1 + 2 * forecast exactly -> (0.1, 2, 1)
    x = np.array([0.1, 0.2, 0.4, 0.5])
    assert mincer_zarnowitz(0.1 + 2 * x, x) == pytest.approx((0.1, 2.0, 1.0), rel=1e-9)


# ---- baselines -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vol_prepared():
    from cryptocast.features.windows import prepare

    df = _table(make_hourly(260, seed=4))
    f = FeaturesConfig(target="realized_vol", indicators=[], horizon=2, lookback=10)
    n = len(df)
    return df, prepare(df, f, {"train": (0, int(n * 0.7)), "val": (int(n * 0.7), n)}, True)


@pytest.mark.parametrize("name", ["vol_persistence", "har", "ewma_vol", "garch"])
def test_vol_baselines_fit_in_closed_form_and_forecast_volatility(name, vol_prepared):
    from cryptocast.config.schema import ModelConfig, TrainConfig
    from cryptocast.features.targets import ANNUALISE
    from cryptocast.models.registry import build_model
    from cryptocast.training.inference import predict_prices
    from cryptocast.training.loop import fit

    df, data = vol_prepared
    model = build_model(ModelConfig(name=name), len(data.feature_names), 2, 10)
    assert fit(model, data, TrainConfig(device="cpu")).trained is False
    ends = data.ends["val"]
    vol = predict_prices(model, data, ends)  # annualised volatility through the Predictor path
    assert vol.shape == (len(ends), 2) and np.all(vol > 0)
    if name in ("vol_persistence", "ewma_vol"):
        col = "log_rv_d" if name == "vol_persistence" else "log_ewma_vol"
        expect = np.exp(df[col].to_numpy()[ends]) * ANNUALISE
        np.testing.assert_allclose(vol[:, 0], expect, rtol=1e-5)
        np.testing.assert_allclose(vol[:, 1], expect, rtol=1e-5)


def test_har_coefficients_equal_an_independent_least_squares_solve(vol_prepared):
    from cryptocast.config.schema import ModelConfig, TrainConfig
    from cryptocast.models.registry import build_model
    from cryptocast.training.loop import fit

    df, data = vol_prepared
    model = build_model(ModelConfig(name="har"), len(data.feature_names), 2, 10)
    fit(model, data, TrainConfig(device="cpu"))
    rows = np.sort(np.concatenate([data.ends["train"], data.ends["val"]]))
    A = np.column_stack(
        [np.ones(rows.size), df[["log_rv_d", "log_rv_w", "log_rv_m"]].to_numpy()[rows]]
    )
    y = df[["target_1", "target_2"]].to_numpy()[rows]
    expect, *_ = np.linalg.lstsq(A, y, rcond=None)
    np.testing.assert_allclose(model.coef.numpy(), expect, rtol=1e-4, atol=1e-5)
    assert 0.3 < expect[1:, 0].sum() < 1.1  # persistent, as the AR(1) log vol (0.9) implies


# ---- walk-forward ----------------------------------------------------------------------------
def test_garch_refits_each_fold_on_rows_before_it_only(data_dir, monkeypatch):
    import cryptocast.models.volatility as volmod
    from cryptocast.evaluate.backtest import run_backtest
    from cryptocast.training.runs import load_feature_table

    store_both(data_dir, make_hourly(200, seed=5))
    honest = volmod.fit_garch
    seen: list[np.ndarray] = []

    def spy(returns_pct):
        seen.append(np.array(returns_pct))
        return honest(returns_pct)

    monkeypatch.setattr(volmod, "fit_garch", spy)
    cfg = config(
        "backtest.models=[garch]", "backtest.test_start=2021-05-20", "backtest.fold_length=20"
    )
    (res,) = run_backtest(cfg, data_dir)
    df = load_feature_table(cfg, data_dir)
    firsts = [f["first_origin"] for f in res.fold_info]
    assert len(seen) == len(firsts) >= 3
    for r, s in zip(seen, firsts, strict=True):
        # the fold's first forecast is made at the close of row s: returns of rows 0..s, no more
        np.testing.assert_allclose(r, df["ret_1d"].to_numpy()[: s + 1] * 100, rtol=1e-5, atol=1e-6)


def _vol_run(data_dir, *models):
    from cryptocast.evaluate.backtest import run_backtest, summarise

    store_both(data_dir, make_hourly(240, seed=6))
    cfg = config(
        "train.epochs=40", "train.lr=0.05", "train.schedule=none", "train.patience=0",
        f"backtest.models=[{', '.join(models)}]", "backtest.test_start=2021-06-01",
        "backtest.fold_length=45",
    )  # fmt: skip
    summary, forecasts, equity = summarise(cfg, run_backtest(cfg, data_dir))
    return summary, forecasts, equity


def test_a_model_fed_tomorrows_rv_is_flagged(data_dir, cheat_model, monkeypatch):
    import cryptocast.features.table as features
    from cryptocast.evaluate.backtest import LEAKAGE_QLIKE_SKILL

    honest = features.compute_features

    def leaky(candles, cfg, timeframe, **kw):
        table = honest(candles, cfg, timeframe, **kw)
        table.insert(3, "leak_next_rv", table["target_1"].fillna(0.0))
        return table

    monkeypatch.setattr(features, "compute_features", leaky)
    summary, _, _ = _vol_run(data_dir, "cheat", "vol_persistence", "har")
    recs = {r["model"]: r for r in summary["results"]}
    assert recs["cheat"]["skill_qlike_persistence"] > LEAKAGE_QLIKE_SKILL
    assert recs["cheat"]["leakage_suspect"] is True
    assert (
        recs["har"]["leakage_suspect"] is False
        and recs["vol_persistence"]["leakage_suspect"] is False
    )


def test_vol_backtest_scores_and_report(data_dir, cheat_model, tmp_path):
    from cryptocast.evaluate.report import write_report

    summary, forecasts, equity = _vol_run(data_dir, "cheat", "vol_persistence", "har", "ewma_vol")
    recs = {r["model"]: r for r in summary["results"]}
    assert summary["target"]["kind"] == "vol"
    assert recs["har"]["skill_qlike"] == 0.0 and recs["har"]["dm_pvalue_vs_har"] == 1.0
    assert recs["vol_persistence"]["skill_qlike_persistence"] == 0.0
    assert recs["cheat"]["leakage_suspect"] is False  # honest features: not flagged
    for r in recs.values():
        assert "mape" not in r and "directional_accuracy" not in r and "sharpe" not in r
        assert r["vt_annual_vol"] > 0 and np.isfinite(r["vt_sharpe"])
        assert 0 < r["vt_mean_position"] <= 2.0  # backtest.max_position
    rep = write_report(tmp_path / "rep", forecasts, summary, equity)
    text = (rep / "report.md").read_text()
    assert "Price-only scores" in text and "| qlike |" in text
    assert "mape" not in text and "directional_accuracy" not in text


# ---- forecast ---------------------------------------------------------------------------------
def test_forecast_logs_volatility_and_scores_it_once_the_day_is_complete(data_dir, tmp_path):
    from cryptocast.data.store import series_path, write_parquet_atomic
    from cryptocast.evaluate.holdout import train_run
    from cryptocast.features.targets import ANNUALISE
    from cryptocast.features.volatility import daily_realized_vol
    from cryptocast.forecasting.job import forecast_series

    hourly = make_hourly(140, seed=7)
    day_d = pd.Timestamp("2021-05-10", tz="UTC")  # the last daily candle the run sees
    next_day = day_d + pd.Timedelta("1D")
    store_both(data_dir, hourly[hourly["timestamp"] < next_day])
    run = train_run(
        config("model.name=har", f"output.runs_dir={tmp_path / 'runs'}"), data_dir
    ).run_dir
    now = next_day + pd.Timedelta("1h")
    res = forecast_series(run, data_dir, fetch=False, now=now, score=True)
    assert res.log_path.parts[-3] == "vol_forecasts" and res.added == 1
    (row,) = res.rows.itertuples()
    assert row.target_time == next_day and 0.05 < row.predicted_vol < 5
    rv = daily_realized_vol(hourly)
    rv_day = rv.set_index("day")["rv"]
    assert row.rv_last == pytest.approx(rv_day[day_d] * ANNUALISE, rel=1e-9)

    def rescore(until: pd.Timestamp):
        write_parquet_atomic(
            hourly[hourly["timestamp"] < until], series_path(data_dir, "binance", SYMBOL, "1h")
        )
        return forecast_series(run, data_dir, fetch=False, now=now, score=True)

    half = rescore(next_day + pd.Timedelta("12h"))  # the day is not over: not scored
    assert half.added == 0 and half.scored == 0 and half.live == {}
    full = rescore(next_day + pd.Timedelta("1D"))
    assert full.scored == 1 and full.live["har"]["n"] == 1
    logged = pd.read_parquet(full.log_path)
    assert logged["realised_vol"].iloc[0] == pytest.approx(rv_day[next_day] * ANNUALISE, rel=1e-9)
