"""``cryptocast train`` and ``forecast`` of a pooled config (``evaluate/pooled_train.py``,
``training/pooled.py``, ``forecasting/pooled.py``).

One pooled run over two evaluated symbols and one training-only symbol, trained once per module on
synthetic candles (a tiny lstm, one epoch): its checkpoint records the pool and each series'
scalers (each equal to its own training rows' statistics), its calendar split leaks no target past
the cut on any series, and ``forecast`` logs each evaluated symbol through the daily job, with the
job's guarantees per series. A pool of one symbol trains and forecasts as the per-series run does,
bit for bit.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cryptocast.cli import app
from tests.conftest import TINY_CONFIG, TINY_NET, make_ohlcv

runner = CliRunner()
EVALUATED = ["BTC/USDT", "ETH/USDT"]
UNIVERSE = "ADA/USDT"  # training-only
N = 260  # daily candles of BTC and ETH, from 2021-01-01
LAST = pd.Timestamp("2021-01-01", tz="UTC") + pd.Timedelta(days=N - 1)  # their newest candle
FAST = [
    *TINY_NET,
    "model.name=lstm",
]
POOLED = [
    f"backtest.symbols=[{', '.join(EVALUATED)}]",
    f"train.universe=[{UNIVERSE}]",
    "backtest.pooled=true",
]

pytestmark = pytest.mark.usefixtures("restore_torch_threads")


def candles() -> dict[str, pd.DataFrame]:
    """ETH misses a candle inside its training rows; the training-only ADA starts six weeks
    later and is listed at another price level."""
    return {
        "BTC/USDT": make_ohlcv(N, "1d", start="2021-01-01", seed=1),
        "ETH/USDT": make_ohlcv(N, "1d", start="2021-01-01", seed=2, price=50.0, drop=[100]),
        UNIVERSE: make_ohlcv(N - 42, "1d", start="2021-02-12", seed=3, price=2.0),
        "XRP/USDT": make_ohlcv(N, "1d", start="2021-01-01", seed=4, price=0.5),  # in no pool
    }


def store(data_dir: Path, series: dict[str, pd.DataFrame]) -> Path:
    from cryptocast.data.store import series_path, write_parquet_atomic

    for symbol, df in series.items():
        write_parquet_atomic(df, series_path(data_dir, "binance", symbol, "1d"))
    return data_dir


def config(root: Path, *overrides: str):
    from cryptocast.config.schema import load_config

    return load_config(TINY_CONFIG, [*FAST, f"output.runs_dir={root / 'runs'}", *overrides])


def train(root: Path, data_dir: Path, *overrides: str):
    from cryptocast.evaluate.holdout import train_run

    return train_run(config(root, *overrides), data_dir)


def meta_of(run_dir: Path) -> dict:
    from cryptocast.training.checkpoint import read_checkpoint

    return read_checkpoint(run_dir / "checkpoint.pt")["meta"]


def now_after(last: pd.Timestamp) -> str:
    """Five minutes after the candle opened at ``last`` closed."""
    return (last + pd.Timedelta("1D") + pd.Timedelta("5min")).isoformat()


def forecast_cli(*args: str, now: str):
    return runner.invoke(app, ["forecast", *args], env={"COLUMNS": "200", "CRYPTOCAST_NOW": now})


def log_of(data_dir: Path, symbol: str) -> pd.DataFrame:
    from cryptocast.data.store import series_path
    from cryptocast.forecasting.log import LOG_SCHEMA, read_log

    return read_log(series_path(data_dir, "binance", symbol, "1d", kind="forecasts"), LOG_SCHEMA)


@pytest.fixture(scope="module")
def pooled(tmp_path_factory):
    """A pooled run (refit on every row, the default) and a validated-only one, the fits they
    made recorded (a spy on ``training.loop.fit``), and their candle store."""
    import cryptocast.training.loop as loop

    root = tmp_path_factory.mktemp("pooled_run")
    data_dir = store(root / "data", candles())
    fits: list = []
    real_fit = loop.fit

    def spy_fit(model, data, cfg, *args, **kwargs):
        fits.append(data)
        return real_fit(model, data, cfg, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(loop, "fit", spy_fit)
        refit = train(root, data_dir, *POOLED)
        validated = train(root, data_dir, *POOLED, "train.refit_all=false")
    return {
        "root": root, "data": data_dir, "run": refit.run_dir, "metrics": refit.metrics,
        "validated": validated.run_dir, "validated_fit": fits[0],
    }  # fmt: skip


@pytest.fixture
def fresh_data(pooled, tmp_path) -> Path:
    """A copy of the run's candle store, for a test that writes forecast logs."""
    return Path(shutil.copytree(pooled["data"], tmp_path / "data"))


# ---- train -------------------------------------------------------------------------------------
def test_one_checkpoint_records_the_pool_and_scores_each_evaluated_symbol(pooled):
    meta, metrics = meta_of(pooled["run"]), pooled["metrics"]
    pool = meta["pooled"]
    assert pool["evaluated"] == EVALUATED and pool["series"] == [*EVALUATED, UNIVERSE]
    assert sorted(pool["members"]) == sorted([*EVALUATED, UNIVERSE]) and not pool["embedding"]
    assert meta["data"]["symbols"] == EVALUATED and meta["data"]["universe"] == [UNIVERSE]
    assert "x_scaler" not in meta and meta["weights"] == "refit_all"
    assert meta["trained_until"] == str(LAST)  # the newest candle any series taught the refit
    assert sorted(metrics["test"]) == EVALUATED  # holdout scores per evaluated symbol only
    for symbol in EVALUATED:
        assert metrics["test"][symbol]["n"] == metrics["pooled"]["n_windows"][symbol]["test"] > 0
        assert np.isfinite(metrics["test"][symbol]["rmse"])
    assert "test" not in metrics["pooled"]["n_windows"][UNIVERSE]  # never scored
    assert metrics["pooled"]["trained"] == [*EVALUATED, UNIVERSE]


def test_no_series_trains_or_validates_on_a_target_at_or_after_the_cut(pooled):
    """The validated fit's windows, mapped back to their own series: training targets open
    before ``val_cut``, validation targets before ``cut`` (the first test candle), on every
    series of the pool whatever its own row indexing; the cuts are the earliest evaluated
    symbol's split."""
    from cryptocast.config.schema import load_config
    from cryptocast.features.windows import split_bounds

    rec = pooled["metrics"]["pooled"]
    val_cut, cut = pd.Timestamp(rec["val_cut"]), pd.Timestamp(rec["cut"])
    assert pd.Timestamp(rec["fit_until"]) < cut
    data = pooled["validated_fit"]
    assert data.series == [*EVALUATED, UNIVERSE]
    H = data.horizon
    for part in data.parts:
        opens = pd.DatetimeIndex(part.timestamps, tz="UTC")
        assert (opens[part.ends["train"] + H] < val_cut).all()
        assert (opens[part.ends["val"] + H] < cut).all()
        if "test" in part.ends:  # the first input of every test window opens at the cut or later
            assert (opens[part.ends["test"] - data.lookback + 1] >= cut).all()
    cfg = load_config(Path(pooled["run"]) / "config.yaml")
    tables = _tables(cfg, pooled["data"], EVALUATED)
    own = [split_bounds(t, cfg.split, 8, 1) for t in tables.values()]
    firsts = [t["timestamp"].iloc[b["test"][0]] for t, b in zip(tables.values(), own, strict=True)]
    assert cut == min(firsts)


def _tables(cfg, data_dir: Path, symbols, to_last: bool = False) -> dict[str, pd.DataFrame]:
    from cryptocast.evaluate.pooled_train import series_config
    from cryptocast.training.runs import load_feature_table

    return {s: load_feature_table(series_config(cfg, s), data_dir, to_last) for s in symbols}


@pytest.mark.parametrize("which", ["run", "validated"])
def test_each_series_scaler_is_its_own_training_rows_statistics(pooled, which):
    """Three scalers in the checkpoint, one per series of the pool, each the statistics of that
    series' own training rows: every stored row after the refit, the rows before ``val_cut``
    without one. No other series' row and (validated) no validation or test row is in them."""
    from cryptocast.config.schema import load_config
    from cryptocast.features.table import feature_columns, target_columns
    from cryptocast.features.windows import window_ends

    run_dir = pooled[which]
    meta = meta_of(run_dir)
    members = meta["pooled"]["members"]
    assert len(members) == 3
    cfg = load_config(Path(run_dir) / "config.yaml")
    tables = _tables(cfg, pooled["data"], [*EVALUATED, UNIVERSE], to_last=which == "run")
    before = pd.Timestamp(meta["pooled"]["scaled_before"])
    for symbol, df in tables.items():
        rows = df[df["timestamp"] < before]
        assert (len(rows) == len(df)) == (which == "run")
        feats = rows[feature_columns(df)].to_numpy("float64")
        x = members[symbol]["x_scaler"]
        np.testing.assert_allclose(x["center"], feats.mean(axis=0), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(x["scale"], feats.std(axis=0), rtol=1e-12)
        gaps = df["gap_before"].to_numpy("int64")
        ends = window_ends(len(df), 0, len(rows), 8, 1, gaps, 0, embargo=True)
        targets = df[target_columns(1)].to_numpy("float64")[ends]
        np.testing.assert_allclose(members[symbol]["y_scaler"]["center"], targets.mean(axis=0))
        assert members[symbol]["data"]["train_rows"] == [int(ends[0]) - 7, int(ends[-1]) + 2]


def test_loading_a_pooled_run_gives_one_predictor_per_evaluated_symbol(pooled):
    from cryptocast.api import load_run

    run = load_run(pooled["run"])
    assert list(run.predictors) == EVALUATED and run.predictor is run.predictors["BTC/USDT"]
    btc, eth = run.predictors.values()
    assert btc.model is eth.model  # one network
    assert btc.x_scaler.center[0] != eth.x_scaler.center[0]  # each its own scalers
    assert run.config.backtest.pooled and run.metrics["pooled"]["evaluated"] == EVALUATED


def test_forecast_config_finds_the_pooled_run_and_not_a_per_series_one(pooled):
    """The training hash of a pooled config covers the evaluated symbols, so a per-series run of
    the same config (backtest.pooled off) is never picked for it, nor the other way round."""
    from cryptocast.forecasting.job import run_from_config

    base = [*FAST, f"output.runs_dir={pooled['root'] / 'runs'}"]
    run_dir, _ = run_from_config(TINY_CONFIG, [*base, *POOLED, "train.refit_all=false"])
    assert run_dir == pooled["validated"]
    cfg_a = config(pooled["root"], *POOLED)
    cfg_b = config(pooled["root"], *POOLED[:1], "backtest.pooled=true")
    cfg_c = config(pooled["root"], "backtest.symbols=[BTC/USDT]", "backtest.pooled=true")
    plain = config(pooled["root"])
    hashes = {c.training_hash() for c in (cfg_a, cfg_b, cfg_c, plain)}
    assert len(hashes) == 4
    assert (
        plain.training_hash() == config(pooled["root"], "backtest.symbols=[X/USDT]").training_hash()
    )


# ---- forecast ----------------------------------------------------------------------------------
def test_forecast_logs_each_evaluated_symbol_once_and_a_rerun_adds_nothing(pooled, fresh_data):
    args = ["--run", str(pooled["run"]), "--data-dir", str(fresh_data), "--no-fetch"]
    first = forecast_cli(*args, now=now_after(LAST))
    assert first.exit_code == 0, first.output
    lines = [line for line in first.output.splitlines() if line.strip()]
    assert len(lines) == 2 and all(line.endswith(": logged") for line in lines), first.output
    logs = {s: log_of(fresh_data, s) for s in EVALUATED}
    for log in logs.values():
        assert len(log) == 1  # horizon 1: one row per evaluated symbol
        row = log.iloc[0]
        assert row["model"] == "lstm@pooled" and row["run_id"] == pooled["run"].name
        assert row["last_candle"] == LAST and np.isfinite(row["predicted_close"])
    assert log_of(fresh_data, UNIVERSE).empty  # training-only: never forecast by default
    again = forecast_cli(*args, now=now_after(LAST))
    assert again.exit_code == 0 and again.output.count("already logged") == 2, again.output
    for symbol in EVALUATED:
        pd.testing.assert_frame_equal(log_of(fresh_data, symbol), logs[symbol])


def test_symbol_picks_one_series_and_serves_a_series_outside_the_pool(pooled, fresh_data):
    """``--symbol`` forecasts one evaluated symbol; without a series embedding it also serves a
    series the run never saw (XRP), scaled on its own rows before the run's ``scaled_before``."""
    from cryptocast.api import forecast
    from cryptocast.errors import ConfigError
    from cryptocast.features.table import feature_columns
    from cryptocast.forecasting.pooled import outside_predictor
    from cryptocast.training.inference import Predictor

    args = ["--run", str(pooled["run"]), "--data-dir", str(fresh_data), "--no-fetch"]
    out = forecast_cli(*args, "--symbol", "ETH/USDT", now=now_after(LAST))
    assert out.exit_code == 0 and "ETH/USDT" in out.output and "BTC" not in out.output
    assert log_of(fresh_data, "BTC/USDT").empty and len(log_of(fresh_data, "ETH/USDT")) == 1
    with pytest.raises(ConfigError, match="pooled over BTC/USDT, ETH/USDT: name one with --symbol"):
        forecast(pooled["run"], data_dir=fresh_data, fetch=False, now=now_after(LAST))
    res = forecast(pooled["run"], data_dir=fresh_data, fetch=False, symbol="XRP/USDT",
                   now=now_after(LAST))  # fmt: skip
    assert res.added == 1 and res.model == "lstm@pooled"
    outside = Predictor.from_checkpoint(pooled["run"] / "checkpoint.pt", "XRP/USDT")
    assert outside.x_scaler is None and outside.meta["pool"]["member"] is False
    xrp = _tables(config(pooled["root"], *POOLED), fresh_data, ["XRP/USDT"], to_last=True)
    fitted = outside_predictor(outside, xrp["XRP/USDT"])
    df = xrp["XRP/USDT"]  # every row opens before the refit's scaled_before
    feats = df[feature_columns(df)].to_numpy("float64")
    np.testing.assert_allclose(fitted.x_scaler.center, feats.mean(axis=0), rtol=1e-12, atol=1e-15)
    want = fitted.predict_frame(df, np.array([len(df) - 1]))[0, 0]
    assert res.rows["predicted_close"].iloc[0] == want


def test_a_series_outside_an_embedding_pool_is_refused_in_one_line(tmp_path):
    """With model.series_embedding the run forecasts only its pool's series (a training-only one
    when named); a per-series run refuses any other symbol than its own."""
    root = tmp_path
    data_dir = store(root / "data", candles())
    run = train(root, data_dir, *POOLED, "model.series_embedding=true", "train.refit_all=false")
    meta = meta_of(run.run_dir)
    assert meta["pooled"]["embedding"]
    args = ["--run", str(run.run_dir), "--data-dir", str(data_dir), "--no-fetch"]
    out = forecast_cli(*args, "--symbol", "XRP/USDT", now=now_after(LAST))
    assert out.exit_code == 2, out.output
    assert "model.series_embedding and forecasts only the series it trained on" in out.output
    assert "not XRP/USDT" in out.output and len(out.output.strip().splitlines()) == 1
    # the validated weights learnt up to val_cut, more than 14 days before LAST: an old model
    ok = forecast_cli(*args, "--allow-old-model", now=now_after(LAST))
    assert ok.exit_code == 0 and ok.output.count(": logged") == 2, ok.output
    ada = forecast_cli(*args, "--symbol", UNIVERSE, "--allow-old-model", now=now_after(LAST))
    assert ada.exit_code == 0, ada.output  # a training-only member, named: its own scalers
    own = train(root, data_dir, "train.refit_all=false").run_dir  # per-series: BTC/USDT
    args = ["--run", str(own), "--data-dir", str(data_dir), "--no-fetch", "--allow-old-model"]
    out = forecast_cli(*args, "--symbol", "ETH/USDT", now=now_after(LAST))
    assert out.exit_code == 2 and "trained on BTC/USDT only, not ETH/USDT" in out.output


def test_a_stale_symbol_is_refused_while_the_others_are_logged(pooled, fresh_data):
    """BTC's next candle arrives, ETH's does not: BTC is logged, ETH refused as stale (the job's
    rule, per series), exit 8; with --allow-stale ETH is logged flagged stale."""
    from cryptocast.data.store import series_path, write_parquet_atomic

    late = LAST + pd.Timedelta("1D")
    btc = candles()["BTC/USDT"]
    btc = pd.concat([btc, btc.iloc[[-1]].assign(timestamp=late)], ignore_index=True)
    write_parquet_atomic(btc, series_path(fresh_data, "binance", "BTC/USDT", "1d"))
    args = ["--run", str(pooled["run"]), "--data-dir", str(fresh_data), "--no-fetch"]
    out = forecast_cli(*args, now=(late + pd.Timedelta("1D") + pd.Timedelta("3h")).isoformat())
    assert out.exit_code == 8, out.output
    assert "ETH/USDT 1d: stale data" in out.output and "1 of 2 forecasts failed" in out.output
    assert len(log_of(fresh_data, "BTC/USDT")) == 1 and log_of(fresh_data, "ETH/USDT").empty
    out = forecast_cli(*args, "--allow-stale", now=(late + pd.Timedelta("1D3h")).isoformat())
    assert out.exit_code == 0, out.output
    assert bool(log_of(fresh_data, "ETH/USDT")["stale"].iloc[0])


# ---- one symbol: the per-series run, bit for bit ------------------------------------------------
def test_a_pooled_run_on_one_symbol_forecasts_bit_identically_to_the_per_series_run(tmp_path):
    import torch

    from cryptocast.api import forecast

    data_dir = store(tmp_path / "data", {"BTC/USDT": candles()["BTC/USDT"]})
    own = train(tmp_path, data_dir)
    pooled = train(tmp_path, data_dir, "backtest.symbols=[BTC/USDT]", "backtest.pooled=true")
    a, b = meta_of(own.run_dir), meta_of(pooled.run_dir)
    assert b["pooled"]["series"] == ["BTC/USDT"]
    assert a["x_scaler"] == b["pooled"]["members"]["BTC/USDT"]["x_scaler"]
    assert own.metrics["test"] == pooled.metrics["test"]["BTC/USDT"]
    assert own.metrics["history"][0]["val_loss"] == pooled.metrics["history"][0]["val_loss"]
    wa = torch.load(own.run_dir / "checkpoint.pt", weights_only=True)["state_dict"]
    wb = torch.load(pooled.run_dir / "checkpoint.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa) and wa.keys() == wb.keys()
    now = now_after(LAST)
    fa = forecast(own.run_dir, data_dir=data_dir, fetch=False, now=now)
    fb = forecast(pooled.run_dir, data_dir=data_dir, fetch=False, now=now)
    assert (fa.model, fb.model) == ("lstm", "lstm@pooled")
    assert np.array_equal(fa.rows["predicted_close"], fb.rows["predicted_close"])


# ---- exit codes ---------------------------------------------------------------------------------
def test_train_exit_codes(tmp_path):
    data_dir = store(tmp_path / "data", {s: df for s, df in candles().items() if s != UNIVERSE})
    base = ["train", "--config", str(TINY_CONFIG), "--data-dir", str(data_dir), "--quiet"]
    sets = [x for o in [*FAST, f"output.runs_dir={tmp_path / 'runs'}"] for x in ("--set", o)]

    def run(*overrides: str):
        more = [x for o in overrides for x in ("--set", o)]
        return runner.invoke(app, [*base, *sets, *more], env={"COLUMNS": "200"})

    out = run(*POOLED)  # ADA's candles are not stored
    assert out.exit_code == 3 and "train.universe: no candles for ADA/USDT" in out.output
    out = run(f"train.universe=[{UNIVERSE}]")
    assert out.exit_code == 2 and "set backtest.pooled=true" in out.output
    out = run(*POOLED[:1], "backtest.pooled=true", "model.name=persistence")
    assert out.exit_code == 2 and "fitted per series" in out.output
    out = run("backtest.symbols=[BTC/USDT, LTC/USDT]", "backtest.pooled=true")
    assert out.exit_code == 3 and "LTC" in out.output
    out = run(*POOLED[:1], "backtest.pooled=true")
    assert out.exit_code == 0, out.output
    assert "training lstm pooled on binance BTC/USDT, ETH/USDT 1d" in out.output
    assert "BTC/USDT" in out.output.split("test segment")[1]  # one row per evaluated symbol


# ---- the volatility target and calibrated quantiles, per series ---------------------------------
def test_a_pooled_volatility_run_maps_each_series_back_with_its_own_factor(tmp_path):
    from cryptocast.api import forecast_each
    from cryptocast.data.store import series_path, write_parquet_atomic
    from tests.test_volatility import daily_from, make_hourly

    data_dir = tmp_path / "data"
    for i, symbol in enumerate([*EVALUATED, UNIVERSE]):
        hourly = make_hourly(200, seed=4 + i)
        write_parquet_atomic(hourly, series_path(data_dir, "binance", symbol, "1h"))
        write_parquet_atomic(daily_from(hourly), series_path(data_dir, "binance", symbol, "1d"))
    last = daily_from(hourly)["timestamp"].iloc[-1]
    run = train(tmp_path, data_dir, *POOLED, "features.target=realized_vol", "model.name=gru")
    members = meta_of(run.run_dir)["pooled"]["members"]
    factors = [members[s]["variance_factor"] for s in EVALUATED]
    assert all(f is not None for f in factors) and factors[0] != factors[1]
    assert sorted(run.metrics["test"]) == EVALUATED
    results = forecast_each(run.run_dir, data_dir=data_dir, fetch=False, now=now_after(last))
    assert [r.symbol for r in results] == EVALUATED
    for r in results:
        assert r.model == "gru@pooled" and r.added == 1 and "vol_forecasts" in str(r.log_path)
        assert np.isfinite(r.rows["predicted_vol"]).all()


def test_a_calibrated_quantile_pooled_run_calibrates_each_symbol_with_its_own_scores(tmp_path):
    import json

    from cryptocast.api import forecast_each

    data_dir = store(tmp_path / "data", {k: v for k, v in candles().items() if k != "XRP/USDT"})
    run = train(
        tmp_path, data_dir, *POOLED, "model.quantiles=[0.05, 0.1, 0.5, 0.9, 0.95]",
        "train.loss=pinball", "backtest.calibration=cqr",
    )  # fmt: skip
    members = meta_of(run.run_dir)["pooled"]["members"]
    saved = json.loads((run.run_dir / "calibration.json").read_text())["members"]
    assert sorted(saved) == sorted(run.metrics["calibration"]) == EVALUATED
    assert "calibration" not in members[UNIVERSE]  # never forecast: not calibrated
    results = forecast_each(run.run_dir, data_dir=data_dir, fetch=False, now=now_after(LAST))
    for r in results:
        own = members[r.symbol]["calibration"]
        assert r.calibration == {"method": "cqr", "n_scores": own["n_scores"]}
        assert (r.rows["calibration"] == "cqr").all() and r.rows["calibrated_quantiles"].iloc[0]
    assert saved["BTC/USDT"]["scores"] != saved["ETH/USDT"]["scores"]
