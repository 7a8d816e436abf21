"""Quantile models and the random-walk baselines through the walk-forward backtest: the
conformal step never reads a test row, the future never changes earlier quantiles, the summary
carries the probabilistic scores, and point models are untouched."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tests.conftest import TINY_CONFIG, make_ohlcv, scramble_after
from tests.test_backtest import FAST, assert_past_unchanged, config, store

LEVELS = "model.quantiles=[0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95]"
QUANTILE = [LEVELS, "train.loss=pinball"]

pytestmark = pytest.mark.usefixtures("restore_torch_threads")


@pytest.mark.parametrize("model", ["lstm", "rw_ewma"])
def test_cqr_calibration_never_reads_a_test_row(data_dir, monkeypatch, model):
    """Spy on the conformal step: every calibration window's outcome rows lie at or before the
    fold's first forecast origin, and the calibration set is the same when every later close is
    replaced by NaN (so nothing after it was read)."""
    import cryptocast.evaluate.conformal as conformal
    from cryptocast.evaluate.walkforward import run_job

    store(data_dir, make_ohlcv(260, "1d", start="2021-01-01", seed=1))
    H = 2
    cfg = config(
        *QUANTILE, f"features.horizon={H}", "backtest.test_start=2021-06-15",
        "backtest.fold_length=25", "backtest.calibration=cqr", "backtest.retrain_every=2",
    )  # fmt: skip
    calls: list[dict] = []
    real = conformal.calibration_set

    def spy(predictor, X, close, ends, horizon):
        out = real(predictor, X, close, ends, horizon)
        s = int(np.max(ends)) + horizon
        masked = np.array(close, dtype=np.float64, copy=True)
        masked[s + 1 :] = np.nan
        again = real(predictor, X, masked, ends, horizon)
        calls.append({"ends": np.asarray(ends).copy(), "same": all(
            np.array_equal(a, b) for a, b in zip(out, again, strict=True)
        )})  # fmt: skip
        return out

    monkeypatch.setattr(conformal, "calibration_set", spy)
    result = run_job(cfg, data_dir, "BTC/USDT", "1d", model)
    retrained = [f for f in result.fold_info if f["retrained"]]
    assert len(calls) == len(retrained) == 2
    for call, fold in zip(calls, retrained, strict=True):
        assert len(call["ends"]) > 0 and call["same"]
        assert call["ends"].max() + H <= fold["first_origin"]  # outcome rows known at the fold
    q = result.y_quantiles
    assert q.shape == (len(result.timestamps), H, 7) and (np.diff(q, axis=-1) >= 0).all()
    np.testing.assert_allclose(q[..., 3], result.y_pred, rtol=1e-12)  # point = median


@pytest.mark.parametrize("calibration", ["none", "cqr", "aci"])
def test_changing_the_future_leaves_earlier_quantiles_bit_identical(tmp_path, calibration):

    candles = make_ohlcv(260, "1d", start="2021-01-01", seed=2)
    p = 200
    future = scramble_after(candles, p)
    cfg = config(
        *QUANTILE, "backtest.models=[gru, rw_ewma, rw_empirical]",
        "backtest.test_start=2021-06-01", "backtest.fold_length=30",
        f"backtest.calibration={calibration}",
    )  # fmt: skip
    assert_past_unchanged(cfg, tmp_path, candles, future, p, "y_quantiles")


def test_summary_holds_the_probabilistic_scores(data_dir):
    from cryptocast.evaluate.backtest import run_backtest, summarise

    store(data_dir, make_ohlcv(260, "1d", start="2021-01-01", seed=3))
    cfg = config(
        *QUANTILE, "backtest.models=[lstm, rw_ewma, rw_empirical, persistence]",
        "backtest.test_start=2021-06-15", "backtest.fold_length=40", "backtest.calibration=cqr",
    )  # fmt: skip
    results = run_backtest(cfg, data_dir)
    summary, forecasts, _ = summarise(cfg, results)
    recs = {r["model"]: r for r in summary["results"]}
    assert "crps" not in recs["persistence"]  # point models keep their record
    for m in ("lstm", "rw_ewma", "rw_empirical"):
        r = recs[m]
        for key in ("pinball", "crps", "crps_skill", "coverage_50", "coverage_80", "coverage_90",
                    "width_80", "interval_score_90", "dm_pvalue_crps_vs_rw_ewma",
                    "dm_pvalue_pinball_vs_rw_ewma", "reliability", "pit"):  # fmt: skip
            assert key in r, (m, key)
        assert 0 <= r["coverage_80"] <= r["coverage_90"] <= 1
    assert (
        recs["rw_ewma"]["crps_skill"] == 0.0 and recs["rw_ewma"]["dm_pvalue_crps_vs_rw_ewma"] == 1
    )
    # rw_ewma's median is "no change": its point forecast is persistence
    np.testing.assert_allclose(recs["rw_ewma"]["rmse"], recs["persistence"]["rmse"], rtol=1e-12)
    assert {"q0.05", "q0.5", "q0.95"} <= set(forecasts.columns)
    lstm = forecasts[forecasts["model"] == "lstm"]
    np.testing.assert_allclose(lstm["q0.5"], lstm["y_pred"], rtol=1e-12)


def test_cli_backtest_with_quantiles_and_metrics(data_dir, tmp_path):
    from cryptocast.cli import app

    store(data_dir, make_ohlcv(240, "1d", start="2021-01-01", seed=4))
    sets = [a for s in [*FAST, *QUANTILE, "backtest.calibration=aci"] for a in ("--set", s)]
    report = tmp_path / "report"
    threads = torch.get_num_threads()
    result = CliRunner().invoke(
        app,
        [
            "backtest", "--config", str(TINY_CONFIG), *sets, "--data-dir", str(data_dir),
            "--report", str(report), "--models", "gru,rw_ewma", "--test-start", "2021-07-01",
            "--fold-length", "30", "--metrics", "crps,crps_skill,coverage_90",
        ],
        env={"COLUMNS": "200"},
    )  # fmt: skip
    torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    assert "CRPS skill" in result.output and "cov 90" in result.output  # short headers
    summary = json.loads((report / "summary.json").read_text())
    assert all("crps" in r for r in summary["results"])
    md = (report / "report.md").read_text()
    assert "crps" in md
    for plot in ("fan_BTC-USDT_1d.png", "reliability_BTC-USDT_1d.png", "pit_BTC-USDT_1d.png"):
        assert (report / plot).stat().st_size > 1000 and f"]({plot})" in md


def test_unknown_metric_lists_the_probabilistic_ones():
    from cryptocast.errors import ConfigError
    from cryptocast.evaluate.metrics import select_metrics

    with pytest.raises(ConfigError, match="crps"):
        select_metrics(["crsp"])
    assert select_metrics(["crps", "coverage_80"]) == ["crps", "coverage_80"]


def test_point_models_are_unchanged_by_a_quantile_config(data_dir):
    """Persistence and drift predict the same prices whether or not model.quantiles is set."""
    from cryptocast.evaluate.walkforward import run_job

    store(data_dir, make_ohlcv(220, "1d", start="2021-01-01", seed=5))
    base = config("backtest.test_start=2021-06-15", "backtest.fold_length=40")
    prob = config(*QUANTILE, "backtest.test_start=2021-06-15", "backtest.fold_length=40")
    for m in ("persistence", "drift"):
        a = run_job(base, Path(data_dir), "BTC/USDT", "1d", m)
        b = run_job(prob, Path(data_dir), "BTC/USDT", "1d", m)
        assert np.array_equal(a.y_pred, b.y_pred) and b.y_quantiles is None


def test_recalibrating_a_result_equals_running_with_that_method(data_dir):
    from cryptocast.evaluate.walkforward import recalibrate, run_job

    store(data_dir, make_ohlcv(260, "1d", start="2021-01-01", seed=6))
    sets = ["backtest.test_start=2021-06-15", "backtest.fold_length=40"]
    raw = run_job(config(*QUANTILE, *sets), data_dir, "BTC/USDT", "1d", "rw_empirical")
    np.testing.assert_array_equal(raw.y_quantiles, raw.raw_quantiles)
    for method in ("cqr", "aci"):
        direct = run_job(
            config(*QUANTILE, *sets, f"backtest.calibration={method}"), data_dir, "BTC/USDT",
            "1d", "rw_empirical",
        )  # fmt: skip
        again = recalibrate(raw, method, 0.005)  # backtest.aci_gamma's default
        np.testing.assert_array_equal(again.y_quantiles, direct.y_quantiles)
        assert not np.array_equal(direct.y_quantiles, raw.y_quantiles)
        np.testing.assert_array_equal(direct.y_pred, raw.y_pred)  # the median never moves
