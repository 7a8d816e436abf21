"""Pooled ("global") models (``evaluate/pooled.py``, ``features/pooled.py``, ``models/series.py``).

Leakage across series is checked on what training actually touches (a spy on every window the
pooled fits gather, mapped back to its series and candle time; the scaler statistics), and end to
end (every series' candles scrambled after a point, the training-only one included). A pooled
model on one series must be the per-series model bit for bit, for every neural model, quantile
heads and the volatility target. Synthetic candles, tiny models, one or two epochs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import TINY_CONFIG, TINY_NET, make_ohlcv, scramble_after

EVALUATED = ["BTC/USDT", "ETH/USDT"]
UNIVERSE = "ADA/USDT"  # training-only
# the tiny network on daily candles, two evaluated symbols and short folds
FAST = [
    *TINY_NET,
    "backtest.timeframes=[1d]",
    "backtest.test_start=2021-06-15",
    "backtest.fold_length=25",
]
POOLED = [
    f"backtest.symbols=[{', '.join(EVALUATED)}]",
    f"train.universe=[{UNIVERSE}]",
    "backtest.pooled=true",
    "backtest.models=[lstm, persistence]",
]

pytestmark = pytest.mark.usefixtures("restore_torch_threads")


def config(*overrides: str):
    from cryptocast.config.schema import load_config

    return load_config(TINY_CONFIG, [*FAST, *overrides])


def pool_candles() -> dict[str, pd.DataFrame]:
    """Three daily series with different row indexing: ETH misses a candle before the test
    period, and the training-only ADA starts six weeks later than the others."""
    return {
        "BTC/USDT": make_ohlcv(260, "1d", start="2021-01-01", seed=1),
        "ETH/USDT": make_ohlcv(260, "1d", start="2021-01-01", seed=2, price=50.0, drop=[100]),
        UNIVERSE: make_ohlcv(218, "1d", start="2021-02-12", seed=3, price=2.0),
    }


def store(data_dir: Path, candles: dict[str, pd.DataFrame]) -> Path:
    from cryptocast.data.store import series_path, write_parquet_atomic

    for symbol, df in candles.items():
        write_parquet_atomic(df, series_path(data_dir, "binance", symbol, "1d"))
    return data_dir


def tables_of(cfg, data_dir: Path, symbols: list[str]) -> dict[str, pd.DataFrame]:
    from cryptocast.evaluate.walkforward import job_config
    from cryptocast.training.runs import load_feature_table

    return {s: load_feature_table(job_config(cfg, s, "1d", "lstm"), data_dir) for s in symbols}


def unit_of(symbols: list[str], universe: list[str], model: str = "lstm"):
    from cryptocast.evaluate.pooled import PoolUnit

    return PoolUnit("1d", model, tuple(symbols), tuple(universe))


# ---- leakage: what the pooled fits actually read ----------------------------------------------
@pytest.fixture(scope="module")
def spied(tmp_path_factory):
    """A pooled walk (horizon 2, a reused model, a warm start) with every fit's training set and
    every window it gathered (training batches and validation scoring alike) recorded."""
    import cryptocast.features.windows as windows
    import cryptocast.training.loop as train
    from cryptocast.evaluate.pooled import run_pooled

    data_dir = store(tmp_path_factory.mktemp("spy") / "data", pool_candles())
    cfg = config(
        *POOLED, "features.horizon=2", "backtest.retrain_every=2", "backtest.warm_start=true",
        "backtest.warm_epochs=1", "train.epochs=2",
    )  # fmt: skip
    tables = tables_of(cfg, data_dir, [*EVALUATED, UNIVERSE])
    fits: list[dict] = []
    real_fit, real_gather = train.fit, windows.gather_windows
    fitting = [False]

    def spy_gather(X, ends, lookback):
        if fitting[0]:
            fits[-1]["gathered"].append(np.asarray(ends).copy())
        return real_gather(X, ends, lookback)

    def spy_fit(model, data, cfg, progress_cb=None):
        fits.append({"data": data, "gathered": []})
        fitting[0] = True
        try:
            return real_fit(model, data, cfg, progress_cb)
        finally:
            fitting[0] = False

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train, "fit", spy_fit)
        mp.setattr(windows, "gather_windows", spy_gather)
        results = run_pooled(cfg, tables, unit_of(EVALUATED, [UNIVERSE]))
    return {"cfg": cfg, "tables": tables, "fits": fits, "results": results}


def test_no_series_trains_or_validates_on_a_target_at_or_after_the_folds_first_forecast(spied):
    """Every (series, candle) any pooled fit read, mapped back to its own series: the target
    candle of each window (row e + H of ITS series) opened no later than the first origin of every
    fold whose weights carry that fit, i.e. its close was known when the fold's first forecast
    was made, whatever the series' own row indexing. Validation windows are gathered too."""
    H = 2
    fits, tables, results = spied["fits"], spied["tables"], spied["results"]
    info = results[0].fold_info
    assert [f["retrained"] for f in info] == [True, False, True, False]
    assert [f["warm_start"] for f in info] == [False, False, True, True]
    assert len(fits) == 2
    for fold_k, fit_k in zip(range(4), [0, 0, 1, 1], strict=True):
        cut = pd.Timestamp(info[fold_k]["cut"])
        for r in results:  # the fold's first origin, on every evaluated series, is at the cut
            first = tables[r.symbol]["timestamp"].iloc[r.fold_info[fold_k]["first_origin"]]
            assert first >= cut
        contributed = set()
        for fit in fits[: fit_k + 1]:  # a warm start carries every earlier fit
            data = fit["data"]
            gathered = np.concatenate(fit["gathered"])
            n_val = len(data.ends["val"])
            assert n_val and np.isin(data.ends["val"], gathered).all()  # validation was read
            for symbol, rows in data.locate(gathered):
                if len(rows) == 0:
                    continue
                contributed.add(symbol)
                ts = tables[symbol]["timestamp"]
                assert rows.min() - 8 + 1 >= 0  # inputs inside the series
                target_open = ts.iloc[rows.max() + H]
                assert target_open <= cut, (symbol, fold_k, target_open, cut)
                # the window's target candle closes no later than the fold's first forecast
                assert target_open + pd.Timedelta("1D") <= cut + pd.Timedelta("1D")
        assert contributed == {*EVALUATED, UNIVERSE}
        assert pd.Timestamp(info[fold_k]["fit_until"]) <= cut


def test_each_series_is_scaled_by_its_own_training_rows_only(spied):
    """Every series' scalers equal the statistics of that series' training rows (recomputed from
    its own feature table), those rows end before the cut, and the stacked table holds each
    series' rows scaled by its own scalers: no other series' row and no test row is in them."""
    from cryptocast.features.table import feature_columns, target_columns

    tables = spied["tables"]
    for fit, info in zip(spied["fits"], spied["results"][0].fold_info[::2], strict=True):
        cut = pd.Timestamp(info["cut"])
        data = fit["data"]
        assert data.series == [*EVALUATED, UNIVERSE]
        for symbol, part, offset in zip(data.series, data.parts, data.offsets, strict=True):
            df = tables[symbol]
            feats = df[feature_columns(df)].to_numpy()
            targets = df[target_columns(2)].to_numpy()
            lo, hi = part.segments["train"]
            assert df["timestamp"].iloc[hi - 1] <= cut
            assert part.segments["val"][1] - 1 <= df["timestamp"].searchsorted(cut, "right") - 1
            np.testing.assert_allclose(part.x_scaler.center, feats[lo:hi].mean(axis=0), rtol=1e-12)
            np.testing.assert_allclose(part.x_scaler.scale, feats[lo:hi].std(axis=0), rtol=1e-12)
            ends = part.ends["train"]
            np.testing.assert_allclose(part.y_scaler.center, targets[ends].mean(axis=0))
            own = (feats - part.x_scaler.center) / part.x_scaler.scale
            mine = data.X[offset : offset + len(df)]
            np.testing.assert_array_equal(mine, own.astype("float32"))


def test_scrambling_every_series_after_a_point_leaves_earlier_pooled_forecasts_bit_identical(
    tmp_path,
):
    """Change every series' candles from the day after the second fold's first origin on (the
    training-only series too): every forecast made before that day stays bit-identical: the whole
    first fold, and the second fold's first origin, whose model a target one candle past its cut
    (on any series) would already have changed."""
    from cryptocast.evaluate.backtest import run_backtest

    cut = pd.Timestamp("2021-07-11", tz="UTC")  # second fold: 2021-07-10 .. 2021-08-03
    candles = pool_candles()
    future = {
        s: scramble_after(df, int(df["timestamp"].searchsorted(cut)), volume=3.0)
        for s, df in candles.items()
    }
    cfg = config(*POOLED, "train.epochs=2")
    runs = [run_backtest(cfg, store(tmp_path / n / "data", c)) for n, c in (("a", candles), ("b", future))]  # fmt: skip
    assert_only_later_forecasts_move(runs, cut, "lstm@pooled", later=60)


def assert_only_later_forecasts_move(
    runs: list, cut: pd.Timestamp, pooled: str, later: int
) -> None:
    """Two backtests (original candles, candles scrambled from ``cut``): every forecast before
    ``cut`` (the first fold + one origin, 26) is bit-identical, the more than ``later`` after it
    are not, and the ``pooled`` model is among them on both evaluated symbols."""
    seen = 0
    for a, b in zip(*runs, strict=True):
        assert (a.symbol, a.model) == (b.symbol, b.model)
        before = pd.DatetimeIndex(a.timestamps) < cut
        assert before.sum() == 26 and (~before).sum() > later  # the first fold + one origin
        assert np.array_equal(a.y_pred[before], b.y_pred[before]), a.model
        assert not np.allclose(a.y_pred[~before], b.y_pred[~before]), a.model
        seen += a.model == pooled
    assert seen == 2


# ---- one series: the per-series model, bit for bit --------------------------------------------
@pytest.mark.parametrize(
    "model, extra",
    [
        ("lstm", []),
        ("gru", []),
        ("transformer", []),
        ("performer_bilstm", []),
        ("lstm", ["backtest.warm_start=true", "backtest.warm_epochs=1", "train.epochs=2"]),
        ("lstm", ["model.quantiles=[0.1, 0.5, 0.9]", "train.loss=pinball",
                  "backtest.calibration=cqr"]),
    ],
    ids=["lstm", "gru", "transformer", "performer_bilstm", "warm", "quantiles"],
)  # fmt: skip
def test_a_pooled_model_on_one_series_is_the_per_series_model_bit_for_bit(data_dir, model, extra):
    from cryptocast.evaluate.backtest import run_backtest

    store(data_dir, {"BTC/USDT": pool_candles()["BTC/USDT"]})
    cfg = config(
        "backtest.symbols=[BTC/USDT]", f"backtest.models=[{model}]", "backtest.pooled=true",
        "model.d_model=8", "model.n_heads=2", "model.n_layers=1", "model.lstm_hidden=4",
        "model.nb_features=8", "model.dim_feedforward=16", *extra,
    )  # fmt: skip
    own, pooled = run_backtest(cfg, data_dir)
    assert (own.model, pooled.model) == (model, f"{model}@pooled")
    assert np.array_equal(own.timestamps, pooled.timestamps)
    assert np.array_equal(own.y_pred, pooled.y_pred)
    if own.y_quantiles is not None:
        assert np.array_equal(own.y_quantiles, pooled.y_quantiles)
    assert [f["max_row_fit"] for f in own.fold_info] == [f["max_row_fit"] for f in pooled.fold_info]


def test_a_pooled_volatility_model_on_one_series_is_the_per_series_model(data_dir):
    """features.target=realized_vol: the pooled path maps log forecasts back with each series'
    own variance factor, as the per-series one does."""
    from cryptocast.data.store import series_path, write_parquet_atomic
    from cryptocast.evaluate.backtest import run_backtest
    from tests.test_volatility import daily_from, make_hourly

    hourly = make_hourly(200, seed=4)
    write_parquet_atomic(hourly, series_path(data_dir, "binance", "BTC/USDT", "1h"))
    write_parquet_atomic(daily_from(hourly), series_path(data_dir, "binance", "BTC/USDT", "1d"))
    cfg = config(
        "features.target=realized_vol", "backtest.symbols=[BTC/USDT]",
        "backtest.models=[gru, har]", "backtest.pooled=true", "backtest.test_start=2021-05-20",
    )  # fmt: skip
    own, har, pooled = run_backtest(cfg, data_dir)
    assert (own.model, har.model, pooled.model) == ("gru", "har", "gru@pooled")  # har: not pooled
    assert np.array_equal(own.y_pred, pooled.y_pred) and np.isfinite(pooled.y_pred).all()


# ---- a coin the model never saw ---------------------------------------------------------------
def test_a_pooled_model_forecasts_a_coin_outside_its_pool(data_dir):
    """Trained on BTC and ETH without a series embedding, it forecasts LTC (never seen) through
    LTC's own scalers (fit on LTC's rows before the cut); with the embedding it refuses."""
    from cryptocast.errors import ConfigError
    from cryptocast.evaluate.pooled import fold_data, series_predictor
    from cryptocast.evaluate.walkforward import job_config
    from cryptocast.models.series import build_pooled_model
    from cryptocast.training.loop import fit

    candles = pool_candles()
    candles["LTC/USDT"] = make_ohlcv(260, "1d", start="2021-01-01", seed=7, price=60.0)
    store(data_dir, candles)
    cut = pd.Timestamp("2021-06-15", tz="UTC")
    for embedding in (False, True):
        cfg = config(*POOLED, f"model.series_embedding={str(embedding).lower()}")
        c = job_config(cfg, "BTC/USDT", "1d", "lstm")
        tables = tables_of(cfg, data_dir, [*EVALUATED, "LTC/USDT"])
        data = fold_data(tables, unit_of(EVALUATED, []), cut, c)
        model = build_pooled_model(c.model, len(data.feature_names), 1, 8, len(data.series))
        fit(model, data, c.train)
        ltc = tables["LTC/USDT"]
        if embedding:
            with pytest.raises(ConfigError, match="series_embedding"):
                series_predictor(model, ltc, cut, c)
            continue
        predictor, X = series_predictor(model, ltc, cut, c)
        origins = np.arange(int(ltc["timestamp"].searchsorted(cut)), len(ltc) - 1)
        pred = predictor.predict_rows(X, ltc["close"].to_numpy(), origins)
        assert pred.shape == (len(origins), 1) and np.isfinite(pred).all()
        assert predictor.x_scaler.center[0] != data.parts[0].x_scaler.center[0]  # LTC's own


def test_a_series_embedding_pools_and_learns_per_series_vectors(data_dir):
    store(data_dir, pool_candles())
    from cryptocast.evaluate.pooled import run_pooled

    cfg = config(*POOLED, "model.series_embedding=true", "train.epochs=2")
    tables = tables_of(cfg, data_dir, [*EVALUATED, UNIVERSE])
    results = run_pooled(cfg, tables, unit_of(EVALUATED, [UNIVERSE]))
    assert [r.model for r in results] == ["lstm@pooled"] * 2
    assert all(np.isfinite(r.y_pred).all() for r in results)


# ---- the backtest: side by side in one report -------------------------------------------------
def test_backtest_pooled_reports_model_at_pooled_per_symbol(tmp_path):
    from cryptocast.api import backtest

    data_dir = store(tmp_path / "data", pool_candles())
    report = tmp_path / "report"
    overrides = [*FAST, *POOLED, "backtest.models=[lstm, gru, persistence]"]
    result = backtest(TINY_CONFIG, data_dir=data_dir, overrides=overrides, report_dir=report)
    import json

    summary = json.loads((report / "summary.json").read_text())
    rows = {(r["symbol"], r["model"]): r for r in summary["results"]}
    for s in EVALUATED:
        for m in ("lstm@pooled", "gru@pooled"):
            rec = rows[(s, m)]
            assert rec["n"] == rows[(s, "lstm")]["n"] > 0
            assert 0 <= rec["dm_pvalue_vs_persistence"] <= 1
            assert f"{s} 1d {m}" in summary["fold_info"]
    assert (UNIVERSE, "lstm@pooled") not in rows  # training-only: never scored
    assert ("BTC/USDT", "persistence@pooled") not in rows  # baselines are not pooled
    assert summary["models"] == ["lstm", "gru", "persistence", "lstm@pooled", "gru@pooled"]
    text = (report / "report.md").read_text()
    assert "lstm@pooled" in text and "training-only ADA/USDT" in text
    forecasts = pd.read_parquet(report / "forecasts.parquet")
    assert set(forecasts["model"]) >= {"lstm@pooled", "gru@pooled"}
    assert len(result.summary["results"]) == 10


def test_the_plan_counts_pooled_jobs_and_refits(data_dir, monkeypatch):
    from cryptocast.evaluate import estimate
    from cryptocast.evaluate.estimate import estimate_backtest

    # one fixed per-window cost: the comparison below is of the plans, not of a timed probe
    monkeypatch.setattr(estimate, "probe_rates", lambda *a, **k: (1e-4, 1e-5))
    store(data_dir, pool_candles())
    plain = estimate_backtest(config(*POOLED[:1], "backtest.models=[lstm, persistence]"), data_dir)
    pooled = estimate_backtest(config(*POOLED), data_dir)
    assert (plain.jobs, plain.folds, plain.refits) == (4, 16, 8)
    assert (pooled.jobs, pooled.folds, pooled.refits) == (5, 24, 12)
    assert pooled.seconds > plain.seconds


def test_pooled_only_replaces_the_per_series_jobs_and_keeps_the_baselines(tmp_path, monkeypatch):
    from cryptocast.api import backtest
    from cryptocast.evaluate import estimate
    from cryptocast.evaluate.estimate import estimate_backtest

    data_dir = store(tmp_path / "data", pool_candles())
    only = [*FAST, *POOLED, "backtest.pooled=only"]
    both = backtest(TINY_CONFIG, data_dir=data_dir, overrides=[*FAST, *POOLED])
    run = backtest(TINY_CONFIG, data_dir=data_dir, overrides=only, report_dir=tmp_path / "r")
    rows = {(r["symbol"], r["model"]): r for r in run.summary["results"]}
    assert sorted(rows) == sorted((s, m) for s in EVALUATED for m in ("persistence", "lstm@pooled"))
    assert run.summary["models"] == ["persistence", "lstm@pooled"]
    kept = {(r["symbol"], r["model"]): r for r in both.summary["results"]}
    for key, rec in rows.items():  # the same pooled model and baseline, with or without lstm
        assert rec["rmse"] == kept[key]["rmse"] and rec["skill_rmse"] == kept[key]["skill_rmse"]
    monkeypatch.setattr(estimate, "probe_rates", lambda *a, **k: (1e-4, 1e-5))
    plan = estimate_backtest(config(*POOLED, "backtest.pooled=only"), data_dir)
    assert (plan.jobs, plan.folds, plan.refits) == (3, 16, 4)  # 2 persistence jobs + 1 pooled


def test_job_keys_of_pooled_results_carry_the_pool_and_leave_per_series_keys_alone():
    from cryptocast.evaluate.jobstore import job_key
    from cryptocast.evaluate.walkforward import job_config

    plain, pooled = config(), config(*POOLED)
    per = [job_key(job_config(c, "BTC/USDT", "1d", "lstm"), "d", 1) for c in (plain, pooled)]
    assert per[0] == per[1]  # the pooled settings do not move a per-series job's key
    c = job_config(pooled, "BTC/USDT", "1d", "lstm")
    pool = [("BTC/USDT", "d"), ("ETH/USDT", "e"), (UNIVERSE, "a")]
    keys = {
        job_key(c, "", 1, pool),
        job_key(c, "", 1, pool[:2]),  # another universe
        job_key(c, "", 1, [*pool[:2], (UNIVERSE, "changed")]),  # a universe candle changed
        per[0],
    }
    assert len(keys) == 4


# ---- config errors: one line each --------------------------------------------------------------
def test_bad_universe_settings_are_one_line_config_errors():
    from cryptocast.errors import ConfigError

    with pytest.raises(ConfigError, match=r"train\.universe.*BASE/QUOTE"):
        config("train.universe=[ADAUSDT]")
    with pytest.raises(ConfigError, match="lists ADA/USDT twice"):
        config("train.universe=[ADA/USDT, ADA/USDT]")


def test_universe_without_pooled_and_missing_candles_are_refused_up_front(tmp_path):
    from typer.testing import CliRunner

    from cryptocast.cli.app import app

    data_dir = store(tmp_path / "data", {s: pool_candles()[s] for s in EVALUATED})
    sets = [a for item in [*FAST, *POOLED] for a in ("--set", item)]
    args = ["backtest", "--config", str(TINY_CONFIG), "--data-dir", str(data_dir), "--yes", *sets]
    out = CliRunner().invoke(app, args, env={"COLUMNS": "220"})
    assert out.exit_code == 3, out.output
    lines = [line for line in out.output.splitlines() if line.strip()]
    assert len(lines) == 1, out.output
    missing = data_dir / "ohlcv" / "binance" / "ADA-USDT_1d.parquet"
    assert "train.universe: no candles for ADA/USDT 1d" in " ".join(out.output.split())
    assert (
        "ADA-USDT_1d.parquet" in out.output and "cryptocast fetch --symbol ADA/USDT" in out.output
    )
    assert not missing.exists()
    out = CliRunner().invoke(app, [*args, "--set", "backtest.pooled=false"], env={"COLUMNS": "220"})
    assert out.exit_code == 2 and "set backtest.pooled=true" in out.output, out.output


# ---- the reference candles: two evaluated coins and two training-only pairs --------------------
def test_pooled_backtest_on_the_reference_candles_with_training_only_pairs(tmp_path, shared_ohlcv):
    """BTC and ETH evaluated, ADA and SOL (../shared/data/universe) training only, daily, two
    folds of 30 days: lstm@pooled beside lstm per coin, each fold cut on the calendar."""
    import json

    from cryptocast.api import backtest
    from cryptocast.data.parquet_io import read_candle_file
    from cryptocast.data.store import series_path, write_parquet_atomic

    universe = shared_ohlcv.parent.parent / "universe" / "binance"
    if not (universe / "ADA-USDT_1d.parquet").is_file():
        pytest.skip(f"training-only pairs not found at {universe} (the shared/ folder)")
    data_dir = tmp_path / "data"
    for symbol, folder in [("BTC/USDT", shared_ohlcv), ("ETH/USDT", shared_ohlcv),
                           ("ADA/USDT", universe), ("SOL/USDT", universe)]:  # fmt: skip
        candles = read_candle_file(folder / f"{symbol.replace('/', '-')}_1d.parquet")
        write_parquet_atomic(candles, series_path(data_dir, "binance", symbol, "1d"))
    overrides = [
        *FAST, "data.start=2022-01-01", "backtest.test_start=2023-05-01",
        "backtest.test_end=2023-06-30", "backtest.fold_length=30",
        f"backtest.symbols=[{', '.join(EVALUATED)}]", "train.universe=[ADA/USDT, SOL/USDT]",
        "backtest.pooled=true", "backtest.models=[lstm, persistence]",
    ]  # fmt: skip
    report = tmp_path / "report"
    backtest(TINY_CONFIG, data_dir=data_dir, overrides=overrides, report_dir=report)
    summary = json.loads((report / "summary.json").read_text())
    rows = {(r["symbol"], r["model"]): r for r in summary["results"]}
    for s in EVALUATED:
        assert rows[(s, "lstm@pooled")]["n"] == rows[(s, "lstm")]["n"] == 60
        assert np.isfinite(rows[(s, "lstm@pooled")]["skill_rmse"])
        for fold in summary["fold_info"][f"{s} 1d lstm@pooled"]:
            assert fold["pool"] == 4
            assert pd.Timestamp(fold["fit_until"]) <= pd.Timestamp(fold["cut"])
    assert {m for _, m in rows} == {"lstm", "persistence", "lstm@pooled"}


def test_pooled_jobs_in_worker_processes_give_the_same_forecasts(tmp_path):
    """The pooled task ships its pool's tables as separate arguments (what Ray resolves from its
    object store); in spawned workers it computes what it computes here."""
    from cryptocast.evaluate.backtest import run_backtest

    data_dir = store(tmp_path / "data", pool_candles())
    one, two = (run_backtest(config(*POOLED, f"backtest.workers={w}"), data_dir) for w in (1, 2))
    assert [(r.symbol, r.model) for r in one] == [(r.symbol, r.model) for r in two]
    for a, b in zip(one, two, strict=True):
        assert np.array_equal(a.y_pred, b.y_pred), a.model


def test_evaluated_symbols_without_a_shared_calendar_are_refused(data_dir):
    """With test_fraction (no test_start) two series of different lengths get different folds:
    a pooled job cannot cut them on one calendar and says what to set."""
    from cryptocast.errors import DataError
    from cryptocast.evaluate.pooled import pooled_folds

    candles = pool_candles()
    candles["ETH/USDT"] = make_ohlcv(400, "1d", start="2020-08-01", seed=2)
    store(data_dir, candles)
    cfg = config(*POOLED, "backtest.test_start=null", "backtest.test_fraction=0.3")
    tables = tables_of(cfg, data_dir, EVALUATED)
    with pytest.raises(DataError, match="share the calendar"):
        pooled_folds(tables, unit_of(EVALUATED, []), cfg)
