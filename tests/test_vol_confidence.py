"""Issue 22 point 7: the 90% Model Confidence Set on QLIKE and Hansen's SPA test against ``har``
over every volatility model of a series, through the volatility scoring and into summary.json and
report.md (the generic functions are tested in tests/test_confidence.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.conftest import TINY_CONFIG
from tests.test_volatility import VOL_FAST, make_hourly, store_both

pytestmark = pytest.mark.usefixtures("restore_torch_threads")


def _job(model: str, y_true: np.ndarray, y_pred: np.ndarray):
    from cryptocast.evaluate.walkforward import JobResult

    n = len(y_true)
    close = 100.0 * np.exp(np.cumsum(np.random.default_rng(1).normal(0, 0.02, n)))
    return JobResult(
        symbol="BTC/USDT", timeframe="1d", model=model,
        timestamps=np.arange(n).astype("datetime64[D]"), folds=np.zeros(n, int),
        last_close=close, y_true=y_true[:, None], y_pred=y_pred[:, None],
        aux={"rv_origin": np.roll(y_true, 1), "next_close": np.append(close[1:], np.nan)},
    )  # fmt: skip


def test_the_mcs_holds_only_a_clearly_best_model_and_spa_finds_it_beats_har():
    """The true volatility is known: ``oracle`` forecasts it, the others forecast it with large
    multiplicative errors. The realised RV is the truth times chi-square noise."""
    from cryptocast.config.schema import BacktestConfig
    from cryptocast.evaluate.scoring import score_vol_series

    rng = np.random.default_rng(0)
    n = 400
    sigma = np.exp(np.log(0.5) + np.cumsum(rng.normal(0, 0.05, n)) * 0.3)
    y_true = sigma * np.sqrt(rng.chisquare(24, n) / 24)
    jobs = [_job("oracle", y_true, sigma)]
    for k, name in enumerate(["har", "ewma_vol", "garch"]):
        jobs.append(_job(name, y_true, sigma * np.exp(rng.normal(0, 0.5 + 0.1 * k, n))))
    recs, _, _ = score_vol_series(jobs, BacktestConfig())
    by = {r["model"]: r for r in recs}
    assert {m for m, r in by.items() if r["mcs_qlike_90"]} == {"oracle"}
    assert by["oracle"]["mcs_pvalue_qlike"] == 1.0
    assert all(by[m]["mcs_pvalue_qlike"] <= 0.10 for m in ("har", "ewma_vol", "garch"))
    assert by["oracle"]["spa_p_vs_har"] < 0.05  # it beats har
    assert by["garch"]["spa_p_vs_har"] > 0.5  # worse than har: no evidence it beats it
    assert "spa_p_vs_har" not in by["har"] and by["har"]["spa_p_any_vs_har"] < 0.05


def test_a_tiny_cli_backtest_writes_mcs_and_spa_fields(data_dir, tmp_path):
    from cryptocast.cli import app

    store_both(data_dir, make_hourly(220, seed=6))
    sets = [
        *VOL_FAST, "model.members=[har, ewma_vol, garch]", "model.combo_weights=inverse_qlike",
    ]  # fmt: skip
    report = tmp_path / "report"
    result = CliRunner().invoke(
        app,
        [
            "backtest", "--config", str(TINY_CONFIG), *(a for s in sets for a in ("--set", s)),
            "--data-dir", str(data_dir), "--symbol", "BTC/USDT", "--timeframe", "1d",
            "--models", "har,ewma_vol,vol_combo,vol_select", "--test-start", "2021-06-01",
            "--fold-length", "40", "--report", str(report),
        ],
        env={"COLUMNS": "220"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    recs = {r["model"]: r for r in json.loads((report / "summary.json").read_text())["results"]}
    assert set(recs) == {"har", "ewma_vol", "vol_combo", "vol_select"}
    for m, r in recs.items():
        assert isinstance(r["mcs_qlike_90"], bool) and 0.0 <= r["mcs_pvalue_qlike"] <= 1.0
        if m != "har":
            assert 0.0 <= r["spa_p_vs_har"] <= 1.0
    assert any(r["mcs_qlike_90"] for r in recs.values())  # the best model is always in the set
    text = (report / "report.md").read_text()
    inside = [m for m, r in recs.items() if r["mcs_qlike_90"]]
    line = next(x for x in text.splitlines() if x.startswith("In the 90% Model Confidence Set"))
    assert line.split("**")[1].split(", ") == inside
    assert "| model | MCS 90% (p) | SPA p vs har |" in text


def test_a_combination_without_members_fails_before_any_job_in_one_line(data_dir, tmp_path):
    from cryptocast.cli import app

    store_both(data_dir, make_hourly(120, seed=6))
    result = CliRunner().invoke(
        app,
        [
            "backtest", "--config", str(TINY_CONFIG), "--set", "model.members=[]",
            *(a for s in VOL_FAST for a in ("--set", s)),
            "--data-dir", str(data_dir), "--symbol", "BTC/USDT", "--timeframe", "1d",
            "--models", "har,vol_combo", "--report", str(tmp_path / "r"),
        ],
    )  # fmt: skip
    assert result.exit_code != 0
    assert "model.members" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "r").exists()
