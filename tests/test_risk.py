"""Risk scores (evaluate/risk.py): Kupiec and Christoffersen against hand computations, ES and the
FZ0 loss, and the risk fields a backtest with a volatility quantile model writes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy.stats import norm
from typer.testing import CliRunner

from cryptocast.evaluate.risk import (
    christoffersen,
    expected_shortfall,
    fz0_loss,
    kupiec,
    risk_scores,
    var_backtest,
)
from tests.conftest import TINY_CONFIG, make_ohlcv
from tests.test_backtest import FAST, store

# 20 days, exceedances on days 2, 6, 7 and 19: x = 4; transitions (by hand, day i -> day i+1):
# 0->0 on 13 pairs, 0->1 on 3 (1->2, 5->6, 18->19), 1->0 on 2 (2->3, 7->8), 1->1 on 1 (6->7)
HITS = np.zeros(20, dtype=bool)
HITS[[2, 6, 7, 19]] = True


def test_kupiec_by_hand():
    p = 0.05
    lr_hand = -2 * (
        16 * math.log(0.95) + 4 * math.log(0.05) - 16 * math.log(0.8) - 4 * math.log(0.2)
    )
    lr, pval = kupiec(HITS, p)
    assert lr == pytest.approx(lr_hand, rel=1e-12) and lr == pytest.approx(5.5911, abs=1e-4)
    assert pval == pytest.approx(math.erfc(math.sqrt(lr_hand / 2)), rel=1e-10)  # chi2(1) tail
    # no exceedance in 250 days at 1%: LR = -2 * 250 * log(0.99)
    assert kupiec(np.zeros(250, bool), 0.01)[0] == pytest.approx(-500 * math.log(0.99))


def test_christoffersen_by_hand():
    p = 0.05
    out = christoffersen(HITS, p)
    assert (out["n00"], out["n01"], out["n10"], out["n11"]) == (13, 3, 2, 1)
    restricted = 15 * math.log(15 / 19) + 4 * math.log(4 / 19)
    markov = 13 * math.log(13 / 16) + 3 * math.log(3 / 16) + 2 * math.log(2 / 3) + math.log(1 / 3)
    lr_ind = -2 * (restricted - markov)
    assert out["lr_ind"] == pytest.approx(lr_ind, rel=1e-12)
    assert out["p_ind"] == pytest.approx(math.erfc(math.sqrt(lr_ind / 2)), rel=1e-10)
    lr_cc = kupiec(HITS, p)[0] + lr_ind
    assert out["lr_cc"] == pytest.approx(lr_cc, rel=1e-12)
    assert out["p_cc"] == pytest.approx(math.exp(-lr_cc / 2), rel=1e-10)  # chi2(2) tail


def test_clustered_exceedances_fail_independence_but_not_coverage():
    hits = np.zeros(500, dtype=bool)
    hits[100:125] = True  # 5% of days, all in one run
    bt = var_backtest(hits, 0.05)
    assert bt["exceedances"] == 25 and bt["rate"] == 0.05 and bt["p_uc"] == pytest.approx(1.0)
    assert bt["p_ind"] < 1e-6 and bt["p_cc"] < 1e-6


def test_expected_shortfall_weights_and_fz0_by_hand():
    q = np.array([[-0.05, -0.03, 0.0]])
    es = expected_shortfall(q, [0.01, 0.05, 0.5], 0.05)
    assert es[0] == pytest.approx(0.6 * -0.05 + 0.4 * -0.03)
    y, v, e, a = np.array([-0.04, 0.01]), np.array([-0.03, -0.03]), np.array([-0.042, -0.042]), 0.05
    hand = [
        -(1 / (a * -0.042)) * (-0.03 + 0.04) + -0.03 / -0.042 + math.log(0.042) - 1,
        -0.03 / -0.042 + math.log(0.042) - 1,
    ]
    np.testing.assert_allclose(fz0_loss(y, v, e, a), hand, rtol=1e-12)


def test_fz0_prefers_the_true_var_and_es():
    """FZ0 is strictly consistent: on N(0, 1) outcomes the true (VaR, ES) scores best."""
    y = np.random.default_rng(0).normal(size=200_000)
    a = 0.05
    v, e = norm.ppf(a), -norm.pdf(norm.ppf(a)) / a
    ones = np.ones_like(y)
    true = fz0_loss(y, v * ones, e * ones, a).mean()
    for s in (0.8, 1.25):
        assert true < fz0_loss(y, s * v * ones, s * e * ones, a).mean()


def test_risk_scores_fields_on_calibrated_quantiles():
    levels = [0.01, 0.05, 0.5, 0.95, 0.99]
    y = np.random.default_rng(1).normal(size=2000)
    q = np.tile(norm.ppf(levels), (y.size, 1))
    out = risk_scores(y, q, levels)
    assert set(out["var_backtests"]) == {"95_lo", "95_hi", "99_lo", "99_hi"}
    for key in ("95_lo", "95_hi", "99_lo", "99_hi"):
        assert out[f"var{key}_p_uc"] > 0.01 and out[f"var{key}_p_cc"] > 0.01
        assert np.isfinite(out[f"fz0_{key}"])
    assert {"pinball_q01", "pinball_q05", "pinball_q95", "pinball_q99"} <= set(out)
    no_tails = risk_scores(y, q[:, 1:4], levels[1:4])  # 99% needs the 1% and 99% levels
    assert set(no_tails["var_backtests"]) == {"95_lo", "95_hi"} and "pinball_q01" not in no_tails


def test_cli_backtest_with_a_volatility_quantile_model_writes_the_risk_fields(data_dir, tmp_path):
    from cryptocast.cli import app

    store(data_dir, make_ohlcv(300, "1d", start="2021-01-01", seed=4))
    levels = "model.quantiles=[0.01, 0.05, 0.1, 0.5, 0.9, 0.95, 0.99]"
    sets = [a for s in [*FAST, levels, "train.loss=pinball"] for a in ("--set", s)]
    report = tmp_path / "report"
    threads = torch.get_num_threads()
    result = CliRunner().invoke(
        app,
        [
            "backtest", "--config", str(TINY_CONFIG), *sets, "--data-dir", str(data_dir),
            "--report", str(report), "--models", "fhs_garch,garch_t,rw_ewma",
            "--test-start", "2021-07-01", "--fold-length", "40",
        ],
        env={"COLUMNS": "200"},
    )  # fmt: skip
    torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    recs = {r["model"]: r for r in json.loads((report / "summary.json").read_text())["results"]}
    for m in ("fhs_garch", "garch_t", "rw_ewma"):
        r = recs[m]
        for key in ("var95_lo_p_uc", "var99_hi_p_cc", "fz0_99_lo", "pinball_q99", "coverage_98",
                    "mcs_crps_90", "mcs_pvalue_crps"):  # fmt: skip
            assert key in r, (m, key)
        assert r["var_backtests"]["99_lo"]["n"] == r["n"]
    assert any(r["mcs_crps_90"] for r in recs.values())
    md = (report / "report.md").read_text()
    assert "Value-at-Risk" in md and "| fhs_garch |" in md


def test_fan_chart_and_reliability_show_the_1_and_99_percent_levels(tmp_path):
    """model.quantiles with 0.01 and 0.99 validates, the fan chart draws their 98% band and the
    reliability diagram plots a point at each of them."""
    import pandas as pd

    from cryptocast.config.schema import ModelConfig
    from cryptocast.evaluate.frames import quantile_column
    from cryptocast.evaluate.report_prob import fan_figure, prob_plots

    levels = [0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99]
    assert ModelConfig(name="fhs_garch", quantiles=levels).quantiles == levels
    n = 40
    ts = pd.date_range("2023-01-01", periods=n, freq="D", tz="UTC")
    y = 100 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.02, n)))
    part = pd.DataFrame({"symbol": "BTC/USDT", "timeframe": "1d", "model": "fhs_garch",
                         "timestamp": ts, "step": 1, "y_true": y, "y_pred": y})  # fmt: skip
    for t in levels:
        part[quantile_column(t)] = y * np.exp(0.02 * norm.ppf(t))
    fig = fan_figure(part, ["fhs_garch"], levels, days=30)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "fhs_garch 98%" in labels and "98" in fig._suptitle.get_text()
    rec = {"model": "fhs_garch", "quantile_levels": levels, "reliability": levels,
           "pit": {"edges": [0.0, *levels, 1.0], "density": [1.0] * 10}}  # fmt: skip
    names = prob_plots(part, [rec], tmp_path, "BTC-USDT_1d", 30)
    assert "reliability_BTC-USDT_1d.png" in names
