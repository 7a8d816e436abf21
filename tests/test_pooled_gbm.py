"""A pooled ``gbm_vol`` (``backtest.pooled`` with ``features.target: realized_vol``): one set of
LightGBM boosters per (timeframe, fold) over every series of the pool (``GbmVol.fit_pooled``),
each series forecast through a copy holding its own scalers and variance factor.

As for the neural models (tests/test_pooled.py): on one series it is the per-series gbm_vol bit for
bit; with a universe its rows sit beside the per-series ones in summary.json; a spy on the rows
the fits read and a scramble of every series' future show that no window whose target candle
opens after the fold's cut is fitted. Synthetic hourly candles (realized measures need them).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import TINY_CONFIG, scramble_after
from tests.test_pooled import FAST, assert_only_later_forecasts_move, config, unit_of
from tests.test_volatility import daily_from, make_hourly

pytest.importorskip("lightgbm", reason="gbm_vol needs lightgbm (pip install 'cryptocast[vol]')")

pytestmark = pytest.mark.usefixtures("restore_torch_threads")

EVALUATED = ["BTC/USDT", "ETH/USDT"]
UNIVERSE = "ADA/USDT"  # training-only
VOL = ["features.target=realized_vol", "backtest.test_start=2021-05-20"]
POOLED = [
    f"backtest.symbols=[{', '.join(EVALUATED)}]",
    f"train.universe=[{UNIVERSE}]",
    "backtest.pooled=true",
    "backtest.models=[gbm_vol, har]",
    "model.gbm_rounds=60",
]


def hourly_pool() -> dict[str, pd.DataFrame]:
    """Three series of hourly candles; the training-only ADA starts two weeks later."""
    return {
        "BTC/USDT": make_hourly(200, seed=4),
        "ETH/USDT": make_hourly(200, seed=5),
        UNIVERSE: make_hourly(186, seed=6, start="2021-01-15"),
    }


def store(data_dir: Path, hourly: dict[str, pd.DataFrame]) -> Path:
    from cryptocast.data.store import series_path, write_parquet_atomic

    for symbol, df in hourly.items():
        write_parquet_atomic(df, series_path(data_dir, "binance", symbol, "1h"))
        write_parquet_atomic(daily_from(df), series_path(data_dir, "binance", symbol, "1d"))
    return data_dir


def test_a_pooled_gbm_vol_on_one_series_is_the_per_series_gbm_vol_bit_for_bit(data_dir):
    from cryptocast.evaluate.backtest import run_backtest

    store(data_dir, {"BTC/USDT": hourly_pool()["BTC/USDT"]})
    cfg = config(
        *VOL, "backtest.symbols=[BTC/USDT]", "backtest.models=[gbm_vol]", "backtest.pooled=true",
        "features.horizon=2", "model.gbm_rounds=60",
    )  # fmt: skip
    own, pooled = run_backtest(cfg, data_dir)
    assert (own.model, pooled.model) == ("gbm_vol", "gbm_vol@pooled")
    assert np.array_equal(own.timestamps, pooled.timestamps)
    assert np.array_equal(own.y_pred, pooled.y_pred) and np.isfinite(pooled.y_pred).all()
    assert [f["max_row_fit"] for f in own.fold_info] == [f["max_row_fit"] for f in pooled.fold_info]


def test_backtest_reports_gbm_vol_at_pooled_per_evaluated_symbol(tmp_path):
    """Two evaluated series and a training-only one: a ``gbm_vol@pooled`` row per evaluated
    symbol, none for the training-only series, and ``har`` (closed form) per series only. The
    series embedding, a neural model's, does not apply to the trees."""
    from cryptocast.api import backtest

    data_dir = store(tmp_path / "data", hourly_pool())
    report = tmp_path / "report"
    overrides = [*FAST, *VOL, *POOLED, "model.series_embedding=true"]
    backtest(TINY_CONFIG, data_dir=data_dir, overrides=overrides, report_dir=report)
    summary = json.loads((report / "summary.json").read_text())
    rows = {(r["symbol"], r["model"]): r for r in summary["results"]}
    for s in EVALUATED:
        rec = rows[(s, "gbm_vol@pooled")]
        assert rec["n"] == rows[(s, "gbm_vol")]["n"] > 0
        for fold in summary["fold_info"][f"{s} 1d gbm_vol@pooled"]:
            assert fold["pool"] == 3
            assert pd.Timestamp(fold["fit_until"]) <= pd.Timestamp(fold["cut"])
    assert (UNIVERSE, "gbm_vol@pooled") not in rows  # training-only: never scored
    assert {m for _, m in rows} == {"gbm_vol", "har", "gbm_vol@pooled"}  # har is not pooled


def test_the_plan_counts_the_pooled_gbm_job_without_a_training_probe(tmp_path, monkeypatch):
    from cryptocast.evaluate import estimate
    from cryptocast.evaluate.estimate import estimate_backtest

    def no_probe(*args, **kwargs):
        raise AssertionError("gbm_vol is not trained by gradient descent: nothing to time")

    monkeypatch.setattr(estimate, "probe_rates", no_probe)
    data_dir = store(tmp_path / "data", hourly_pool())
    plan = estimate_backtest(config(*VOL, *POOLED), data_dir)
    # gbm_vol and har on two symbols, one pooled gbm_vol; three folds each
    assert (plan.jobs, plan.folds, plan.refits, plan.seconds) == (5, 18, 0, 0.0)


def test_the_plan_costs_a_combination_as_its_neural_members(tmp_path, monkeypatch):
    from cryptocast.evaluate import estimate
    from cryptocast.evaluate.estimate import estimate_backtest, trained_models

    probed = []

    def fixed(cfg, *args, **kwargs):  # one fixed rate: the plans are compared, not a timed probe
        probed.append(cfg.model.name)
        return 1e-4, 1e-5

    monkeypatch.setattr(estimate, "probe_rates", fixed)
    data_dir = store(tmp_path / "data", hourly_pool())
    one = [*VOL, "backtest.symbols=[BTC/USDT]"]
    gru = estimate_backtest(config(*one, "backtest.models=[gru]"), data_dir)
    combo = estimate_backtest(
        config(*one, "backtest.models=[vol_combo]", "model.members=[har, gru]"), data_dir
    )
    assert gru.seconds > 0 and combo.seconds == gru.seconds  # har is closed-form: free
    assert combo.refits == gru.refits and probed == ["gru", "gru"]
    free = estimate_backtest(config(*one, "backtest.models=[vol_combo]"), data_dir)
    assert (free.seconds, free.refits) == (0.0, 0)  # har, ewma_vol, garch: nothing trained
    cfg = config(*one, "model.name=vol_select", "model.members=[lstm, har, gru]")
    assert trained_models(cfg) == ["lstm", "gru"]


def test_no_pooled_gbm_fit_reads_a_window_whose_target_opens_after_the_cut(tmp_path):
    """Every row the pooled fits unscale (training and early-stopping rows, each series'), mapped
    to its own series: its target candle (row + H) opens at or before the fold's cut; the rows
    LightGBM was given are exactly those; every series of the pool contributes."""
    import lightgbm

    from cryptocast.evaluate.pooled import run_pooled
    from cryptocast.evaluate.walkforward import job_config
    from cryptocast.models.gbm import GbmVol
    from cryptocast.training.runs import load_feature_table

    H = 2
    data_dir = store(tmp_path / "data", hourly_pool())
    cfg = config(*VOL, *POOLED, f"features.horizon={H}")
    series = [*EVALUATED, UNIVERSE]
    tables = {s: load_feature_table(job_config(cfg, s, "1d", "gbm_vol"), data_dir) for s in series}
    closes = {s: tables[s]["close"].to_numpy("float64") for s in series}
    fits: list[dict] = []
    real_pooled, real_rows, real_train = GbmVol.fit_pooled, GbmVol.unscaled_rows, lightgbm.train

    def spy_pooled(self, parts):
        fits.append({"read": [], "given": 0})
        return real_pooled(self, parts)

    def spy_rows(self, data, rows):
        if fits:
            fits[-1]["read"].append((data, np.asarray(rows).copy()))
        return real_rows(self, data, rows)

    def spy_train(params, train_set, *args, valid_sets=(), **kw):
        fits[-1]["given"] += sum(len(d.get_label()) for d in (train_set, *valid_sets))
        return real_train(params, train_set, *args, valid_sets=valid_sets, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(GbmVol, "fit_pooled", spy_pooled)
        mp.setattr(GbmVol, "unscaled_rows", spy_rows)
        mp.setattr(lightgbm, "train", spy_train)
        results = run_pooled(cfg, tables, unit_of(EVALUATED, [UNIVERSE], "gbm_vol"))
    info = results[0].fold_info
    assert len(fits) == len(info) == 3 and all(f["retrained"] for f in info)
    for fit, fold in zip(fits, info, strict=True):
        cut = pd.Timestamp(fold["cut"])
        contributed, finite = set(), 0
        for data, rows in fit["read"]:
            symbol = next(s for s in series if np.array_equal(data.close, closes[s]))
            contributed.add(symbol)
            if len(rows):
                target_open = pd.Timestamp(data.timestamps[rows.max() + H], tz="UTC")
                assert target_open <= cut, (symbol, target_open, cut)
            y = data.Y[rows]
            finite += sum(int(np.isfinite(y[:, h]).sum()) for h in range(H))
        assert contributed == set(series)
        assert fit["given"] == finite  # LightGBM saw the spied rows and no other


def test_scrambling_every_series_after_a_point_leaves_earlier_pooled_gbm_forecasts_identical(
    tmp_path,
):
    """Every series' hourly candles (the training-only one's too) changed from the day after the
    second fold's first origin on: every gbm_vol@pooled forecast made before that day is
    bit-identical, later ones change."""
    from cryptocast.evaluate.backtest import run_backtest

    cut = pd.Timestamp("2021-06-15", tz="UTC")  # second fold: 2021-06-14 .. 2021-07-08
    hourly = hourly_pool()
    future = {
        s: scramble_after(df, int(df["timestamp"].searchsorted(cut)), volume=3.0)
        for s, df in hourly.items()
    }
    cfg = config(*VOL, *POOLED, "backtest.models=[gbm_vol]")
    runs = [run_backtest(cfg, store(tmp_path / n / "data", h)) for n, h in (("a", hourly), ("b", future))]  # fmt: skip
    assert_only_later_forecasts_move(runs, cut, "gbm_vol@pooled", later=20)
