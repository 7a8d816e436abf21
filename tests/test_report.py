"""Report folder: atomic write, summary.json fields, plots, report.md, results table highlight."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from cryptocast.errors import ConfigError, DataError
from cryptocast.evaluate import evaluate_forecasts
from cryptocast.evaluate.report import (
    BUY_HOLD,
    best_rows,
    equity_frame,
    forecasts_frame,
    results_table,
    results_tables,
    series_arrays,
    write_report,
)
from cryptocast.evaluate.scoring import PRICE

H = 2


def _job(model: str, noise: float, n: int = 120, seed: int = 0):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n + H)))
    last = close[:n]
    true = np.stack([close[1 + h : n + 1 + h] for h in range(H)], axis=1)
    pred = (
        true * np.exp(rng.normal(0, noise, true.shape)) if noise else np.repeat(last[:, None], H, 1)
    )
    ts = pd.date_range("2023-01-01", periods=n, freq="1D", tz="UTC")
    folds = np.arange(n) // 30
    rec, trade = evaluate_forecasts("BTC/USDT", "1d", model, last, true, pred)
    fc = forecasts_frame(ts, "BTC/USDT", "1d", model, folds, last, true, pred)
    return rec, trade, fc, ts


@pytest.fixture(scope="module")
def inputs():
    recs, fcs, curves = [], [], {}
    for model, noise in [("lstm", 0.01), ("persistence", 0.0)]:
        rec, trade, fc, ts = _job(model, noise)
        recs.append(rec)
        fcs.append(fc)
        curves[model] = trade.equity
    curves[BUY_HOLD] = trade.buy_hold_equity
    equity = equity_frame(ts, "1d", "BTC/USDT", curves)
    summary = {"config_hash": "abc123", "results": recs}
    return pd.concat(fcs, ignore_index=True), summary, equity


def test_record_has_required_fields_and_roundtrips(inputs):
    forecasts, summary, _ = inputs
    for rec in summary["results"]:
        assert set(PRICE.required_fields) <= set(rec)
    pers = summary["results"][1]
    assert pers["skill_rmse"] == pytest.approx(0.0) and pers["n_trades"] == 0
    arrays = series_arrays(forecasts[forecasts["model"] == "lstm"])
    assert arrays["y_true"].shape == (120, H)
    again, _ = evaluate_forecasts(
        "BTC/USDT", "1d", "lstm", arrays["last_close"], arrays["y_true"], arrays["y_pred"]
    )
    assert again["rmse"] == pytest.approx(summary["results"][0]["rmse"])


def test_write_report_complete_folder(tmp_path, inputs):
    forecasts, summary, equity = inputs
    out = write_report(tmp_path / "rep", forecasts, summary, equity)
    files = {p.name for p in out.iterdir()}
    assert {"forecasts.parquet", "summary.json", "report.md", "equity.parquet"} <= files
    pngs = sorted(f for f in files if f.endswith(".png"))
    assert pngs == [
        "actual_vs_pred_BTC-USDT_1d.png",
        "equity_BTC-USDT_1d.png",
        "fold_error_BTC-USDT_1d.png",
    ]
    assert all((out / p).read_bytes()[:4] == b"\x89PNG" for p in pngs)
    data = json.loads((out / "summary.json").read_text())
    assert data["config_hash"] == "abc123" and len(data["results"]) == 2
    assert data["results"][1]["directional_accuracy"] is None  # NaN -> null, strict JSON
    md = (out / "report.md").read_text()
    assert "| lstm |" in md and "![equity_BTC-USDT_1d.png](equity_BTC-USDT_1d.png)" in md
    back = pd.read_parquet(out / "forecasts.parquet")
    assert len(back) == len(forecasts) and list(back.columns)[:4] == [
        "timestamp", "symbol", "timeframe", "model",
    ]  # fmt: skip
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


def test_failed_write_leaves_previous_report_and_no_temp(tmp_path, inputs, monkeypatch):
    forecasts, summary, equity = inputs
    out = write_report(tmp_path / "rep", forecasts, summary)
    before = (out / "summary.json").read_text()
    import cryptocast.evaluate.report as rep

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(rep, "_markdown", boom)
    with pytest.raises(RuntimeError):
        write_report(out, forecasts, {**summary, "config_hash": "new"})
    assert (out / "summary.json").read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["rep"]


def test_bad_inputs(tmp_path, inputs):
    forecasts, summary, _ = inputs
    with pytest.raises(DataError, match="lacks sharpe"):
        bad = {"results": [{k: v for k, v in summary["results"][0].items() if k != "sharpe"}]}
        write_report(tmp_path / "a", forecasts, bad)
    with pytest.raises(DataError, match="lacks columns y_pred"):
        write_report(tmp_path / "b", forecasts.drop(columns="y_pred"), summary)
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not a cryptocast report"):
        write_report(other, forecasts, summary)
    assert (other / "notes.txt").exists()
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_results_table_highlights_best():
    recs = [
        {"symbol": "BTC/USDT", "timeframe": "1d", "model": "a", "rmse": 2.0, "sharpe": 0.5,
         "dm_pvalue_vs_persistence": 0.01},
        {"symbol": "BTC/USDT", "timeframe": "1d", "model": "b", "rmse": 1.0, "sharpe": float("nan"),
         "dm_pvalue_vs_persistence": 0.5},
        {"symbol": "ETH/USDT", "timeframe": "1d", "model": "a", "rmse": 3.0, "sharpe": 1.0,
         "dm_pvalue_vs_persistence": 0.2},
    ]  # fmt: skip
    table = results_table(recs[:2])
    assert table.title == "BTC/USDT 1d: errors in USDT"  # RMSE's unit
    cols = {c.header: list(c._cells) for c in table.columns}
    assert cols["RMSE"] == ["2", "[bold green]1[/]"]
    assert cols["Sharpe"] == ["0.5", "–"]  # a single finite value is not "best"
    assert not any("green" in s for s in cols["DM p pers"])
    assert [t.title for t in results_tables(recs)] == [
        "BTC/USDT 1d: errors in USDT",
        "ETH/USDT 1d: errors in USDT",
    ]
    console = Console(record=True, width=120)
    console.print(table)
    assert "RMSE" in console.export_text()


def test_a_model_that_never_trades_is_not_best_at_drawdown():
    recs = [
        {"model": "persistence", "max_drawdown": 0.0, "sharpe": 0.0, "n_trades": 0},
        {"model": "lstm", "max_drawdown": 0.15, "sharpe": 1.5, "n_trades": 40},
        {"model": "gru", "max_drawdown": 0.2, "sharpe": 1.2, "n_trades": 30},
    ]
    assert best_rows(recs, "max_drawdown") == {1}  # not persistence's 0
    assert best_rows(recs, "sharpe") == {1}


def _real_looking_records() -> list[dict]:
    """Figures shaped like a daily BTC backtest (6 models), wide enough to squeeze a table."""
    rng = np.random.default_rng(0)
    names = ["performer_bilstm", "lstm", "gru", "transformer", "persistence", "drift"]
    return [
        {"symbol": "BTC/USDT", "timeframe": "1d", "model": m, "n": 180,
         "rmse": 643.7 + rng.normal() * 10, "mae": 454.5, "mape": 1.786, "mse": 414308.98,
         "rmse_ret": 0.02574, "mae_ret": 0.01798, "directional_accuracy": 0.4611,
         "skill_rmse": -0.009414, "mase": 1.022, "dm_pvalue_vs_persistence": 0.05112,
         "dm_pvalue_vs_best": 0.09147, "sharpe": -0.4112, "max_drawdown": 0.1541, "n_trades": 9}
        for m in names
    ]  # fmt: skip


def test_backtest_table_reads_at_80_columns():
    """At 80 columns the compact table shows every value whole, with distinct short headers;
    the full table is what a wide terminal gets (a pipe: whichever fits $COLUMNS)."""
    from cryptocast.cli.tables import fits, print_table
    from cryptocast.evaluate.report import COMPACT_COLUMNS

    recs = _real_looking_records()
    full, compact = results_table(recs), results_table(recs, COMPACT_COLUMNS, compact=True)
    narrow = Console(record=True, width=80, force_terminal=True, color_system=None)
    assert not fits(narrow, full)
    print_table(narrow, full, lambda: compact)
    text = narrow.export_text()
    assert "…" not in text and max(map(len, text.splitlines())) <= 80, text
    for name in ("performer_bilstm", "persistence", "RMSE", "skill", "DM p pers", "Sharpe"):
        assert name in text, text
    headers = [c.header for c in full.columns]
    assert len(set(headers)) == len(headers) and "DM p vs NN" in headers
    wide = Console(record=True, width=200, force_terminal=True, color_system=None)
    print_table(wide, full, lambda: compact)
    assert "DM p vs NN" in wide.export_text() and "…" not in wide.export_text()


def _rec(model: str, skill: float, p: float, **kw) -> dict:
    return {"symbol": "BTC/USDT", "timeframe": "1d", "model": model, "n": 364,
            "skill_rmse": skill, "dm_pvalue_vs_persistence": p, "sharpe": kw.pop("sharpe", 0.5),
            "n_trades": kw.pop("n_trades", 10), "total_return": 0.1, "max_drawdown": 0.2,
            "exposure": 0.5, "bh_sharpe": 1.13, "bh_total_return": 0.6, "bh_max_drawdown": 0.3,
            "bh_n_trades": 1, "bh_exposure": 1.0, **kw}  # fmt: skip


def test_summary_paragraph_says_in_words_who_beats_persistence():
    from cryptocast.evaluate.report_text import summary_paragraph

    base = _rec("persistence", 0.0, 1.0, sharpe=0.0, n_trades=0)
    none = summary_paragraph("BTC/USDT", "1d", [base, _rec("lstm", -0.008, 0.107),
                                                 _rec("gru", -0.02, 0.009)])  # fmt: skip
    assert (
        "no model beats persistence (tomorrow = today): the best, lstm, has skill -0.008 " in none
    )
    assert "(DM p 0.107)" in none and "Significantly worse than persistence: gru." in none
    assert "buy-and-hold's 1.13 (+60.0 %)" in none
    noise = summary_paragraph("BTC/USDT", "1d", [base, _rec("drift", 0.003, 0.23)])
    assert "no model beats persistence (tomorrow = today) significantly" in noise
    assert "drift, has skill +0.003 with DM p 0.230, which is within noise" in noise
    win = summary_paragraph("BTC/USDT", "1d", [base, _rec("cheat", 0.5, 0.0001)])
    assert "cheat (skill +0.500, DM p < 0.001) beats persistence" in win


def test_report_md_has_costs_folds_buy_and_hold_and_a_summary(tmp_path, inputs):
    forecasts, summary, equity = inputs
    summary = {**summary, "config": {"backtest": {"fee_bps": 10, "slippage_bps": 5}}}
    md = (write_report(tmp_path / "r", forecasts, summary, equity) / "report.md").read_text()
    assert "- costs: 10 bp fee + 5 bp slippage per unit of position change" in md
    assert "| buy and hold |" in md and "Trading simulation after costs" in md
    assert "| fold | first origin | last origin | origins |" in md
    first = forecasts[forecasts["fold"] == forecasts["fold"].min()]["timestamp"].min()
    assert f"| {first:%Y-%m-%d %H:%M} |" in md
    assert "beats persistence" in md or "no model beats persistence" in md
