"""The words and small tables of report.md: costs used, fold dates, buy-and-hold, and a summary.

Kept apart from ``report.py`` (files, plots, the results table) so the prose rules can be read and
tested on their own. Every sentence is computed from the result records; nothing is typed in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

BASELINE = "persistence"
ALPHA = 0.05  # significance level used in the summary's wording


def _num(v: Any) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _p(v: Any) -> str:
    x = _num(v)
    return "–" if x is None else (f"{x:.3f}" if x >= 0.001 else "< 0.001")


def _pct(v: Any, sign: bool = True) -> str:
    x = _num(v)
    return "–" if x is None else (f"{x * 100:+.1f} %" if sign else f"{x * 100:.1f} %")


def pooled_line(summary: dict[str, Any]) -> str | None:
    """``- pooled: ...`` naming what the ``@pooled`` models trained on (None without them)."""
    from cryptocast.evaluate.pooled import POOLED

    if not any(POOLED in m for m in summary.get("models", [])):
        return None
    cfg = summary.get("config", {})
    symbols = cfg.get("backtest", {}).get("symbols", [])
    universe = [u for u in cfg.get("train", {}).get("universe", []) if u not in symbols]
    extra = f" + training-only {', '.join(universe)}" if universe else ""
    return (
        f"- pooled: each `{POOLED}` model is one model per timeframe and fold trained on "
        f"{', '.join(symbols)}{extra}, each series scaled by its own training rows, folds cut on "
        "the calendar (docs/global.md)"
    )


def costs_line(summary: Mapping) -> str | None:
    """``- costs: 10 bp fee + 5 bp slippage per unit of position change; long/flat`` (or None)."""
    bt = (summary.get("config") or {}).get("backtest") or {}
    if "fee_bps" not in bt:
        return None
    mode = "long/short" if bt.get("long_short") else "long/flat"
    return (
        f"- costs: {bt['fee_bps']:g} bp fee + {bt.get('slippage_bps', 0):g} bp slippage per unit "
        f"of position change; strategy {mode} on the sign of the step-1 forecast"
    )


def fold_dates(forecasts: pd.DataFrame) -> dict[tuple[str, str], pd.DataFrame]:
    """Per series: fold, first and last forecast origin, and origin count (from the forecasts)."""
    out: dict[tuple[str, str], pd.DataFrame] = {}
    one = forecasts[forecasts["step"] == forecasts["step"].min()]
    for (symbol, tf), part in one.groupby(["symbol", "timeframe"], sort=True):
        # every model shares the fold plan of its series; take the first model's origins
        first_model = part[part["model"] == part["model"].iloc[0]]
        g = first_model.groupby("fold")["timestamp"]
        out[(symbol, tf)] = pd.DataFrame(
            {"first": g.min(), "last": g.max(), "origins": g.size()}
        ).reset_index()
    return out


def fold_table(folds: pd.DataFrame) -> list[str]:
    """Markdown table of fold dates."""
    lines = ["| fold | first origin | last origin | origins |", "|---:|---|---|---:|"]
    for r in folds.itertuples():
        lines.append(
            f"| {r.fold} | {r.first:%Y-%m-%d %H:%M} | {r.last:%Y-%m-%d %H:%M} | {r.origins} |"
        )
    return lines


def trading_table(recs: Sequence[Mapping]) -> list[str]:
    """Markdown table: each model's strategy after costs, then buy-and-hold on the same candles."""
    if not recs or "total_return" not in recs[0]:
        return []
    head = "| strategy | total return | Sharpe | max drawdown | trades | exposure |"
    lines = [head, "|---|---:|---:|---:|---:|---:|"]
    for r in recs:
        lines.append(
            f"| {r['model']} | {_pct(r.get('total_return'))} | {_fmt2(r.get('sharpe'))} | "
            f"{_pct(r.get('max_drawdown'), sign=False)} | {r.get('n_trades', '–')} | {_fmt2(r.get('exposure'))} |"
        )
    b = recs[0]
    if "bh_total_return" in b:
        lines.append(
            f"| buy and hold | {_pct(b.get('bh_total_return'))} | {_fmt2(b.get('bh_sharpe'))} | "
            f"{_pct(b.get('bh_max_drawdown'), sign=False)} | {b.get('bh_n_trades', '–')} | "
            f"{_fmt2(b.get('bh_exposure'))} |"
        )
    return lines


def _fmt2(v: Any) -> str:
    x = _num(v)
    return "–" if x is None else f"{x:.2f}"


def summary_paragraph(symbol: str, timeframe: str, recs: Sequence[Mapping]) -> str:
    """One paragraph in words: which model, if any, beats persistence (skill, DM p), which are
    significantly worse, and how the best strategy compares with buy-and-hold."""
    series = f"On {symbol} {timeframe}"
    others = [
        r for r in recs if r.get("model") != BASELINE and _num(r.get("skill_rmse")) is not None
    ]
    if not any(r.get("model") == BASELINE for r in recs) or not others:
        return f"{series} there is no persistence baseline to compare with."
    n = int(recs[0].get("n") or 0)
    ranked = sorted(others, key=lambda r: -_num(r["skill_rmse"]))
    best = ranked[0]
    s, p = _num(best["skill_rmse"]), _num(best.get("dm_pvalue_vs_persistence"))
    sig_better = [
        r for r in ranked
        if _num(r["skill_rmse"]) > 0 and (_num(r.get("dm_pvalue_vs_persistence")) or 1) < ALPHA
    ]  # fmt: skip
    if sig_better:
        names = ", ".join(
            f"{r['model']} (skill {_num(r['skill_rmse']):+.3f}, DM p {_p(r['dm_pvalue_vs_persistence'])})"
            for r in sig_better
        )
        text = (
            f"{series} ({n} forecasts), {names} beat{'s' if len(sig_better) == 1 else ''} "
            f"persistence (tomorrow = today) on RMSE, significantly at the {ALPHA:g} level."
        )
    elif s > 0:
        text = (
            f"{series} ({n} forecasts), no model beats persistence (tomorrow = today) "
            f"significantly: the best, {best['model']}, has skill {s:+.3f} with DM p {_p(p)}, "
            "which is within noise."
        )
    else:
        text = (
            f"{series} ({n} forecasts), no model beats persistence (tomorrow = today): the best, "
            f"{best['model']}, has skill {s:+.3f} (DM p {_p(p)})."
        )
    worse = [
        r["model"] for r in ranked
        if _num(r["skill_rmse"]) < 0 and (_num(r.get("dm_pvalue_vs_persistence")) or 1) < ALPHA
    ]  # fmt: skip
    if worse:
        text += f" Significantly worse than persistence: {', '.join(worse)}."
    traders = [r for r in others if _num(r.get("sharpe")) is not None and r.get("n_trades")]
    if traders and _num(recs[0].get("bh_sharpe")) is not None:
        top = max(traders, key=lambda r: _num(r["sharpe"]))
        text += (
            f" Trading on the forecasts after costs, the best Sharpe is {top['model']}'s "
            f"{_num(top['sharpe']):.2f} ({_pct(top.get('total_return'))}) against buy-and-hold's "
            f"{_num(recs[0]['bh_sharpe']):.2f} ({_pct(recs[0].get('bh_total_return'))})."
        )
    if n and n < 100:
        text += f" With {n} forecasts these figures are noisy."
    return text


def failed_jobs_section(summary: Mapping) -> list[str]:
    """report.md's "Failed jobs" section of a partial backtest (none when every job finished):
    each failed (symbol, timeframe, model) with its one-line error, and how to redo only them."""
    failed = summary.get("failed_jobs") or []
    if not failed:
        return []
    done = len(summary.get("results") or [])
    lines = [
        "## Failed jobs",
        "",
        f"This report is partial: {len(failed)} job(s) failed and are missing from every table "
        f"below ({done} finished). Rerun the same command to redo only the failed jobs; the "
        "finished ones are reused.",
        "",
        "| symbol | timeframe | model | error |",
        "|---|---|---|---|",
    ]
    for f in failed:
        cells = [str(f.get(k, "")).replace("|", "\\|") for k in ("symbol", "timeframe", "model")]
        error = " ".join(str(f.get("error", "")).split()).replace("|", "\\|")
        lines.append(f"| {' | '.join(cells)} | {error} |")
    return [*lines, ""]


def column_legend(records: Sequence[Mapping]) -> list[str]:
    """Bullets defining the price table's columns that need words: units and the DM p-values
    (what each is against). None for other targets (their note explains their columns)."""
    if not records or "rmse" not in records[0]:
        return []
    from cryptocast.evaluate.plots import price_unit
    from cryptocast.evaluate.scoring import NEURAL

    quotes = ", ".join(dict.fromkeys(price_unit(r["symbol"]) for r in records))
    lines = [
        f"- `rmse`, `mae`: errors of the predicted close in the quote currency ({quotes}); "
        "`mape` in %; all at the last horizon step.",
        "- **DM p**: two-sided Diebold–Mariano p-value (squared error at the last step, with the "
        "Harvey–Leybourne–Newbold correction): the probability of a loss difference at least this "
        "large if the two forecasts were equally accurate. A small p with negative skill means "
        "significantly *worse*. `dm_pvalue_vs_persistence` is against persistence.",
    ]
    if any("dm_pvalue_vs_best" in r for r in records):
        from cryptocast.evaluate.pooled import POOLED

        pooled = f", per series or `{POOLED}`" if any(POOLED in r["model"] for r in records) else ""
        lines.append(
            "- **DM p vs best other neural (model)**: against the neural model "
            f"({', '.join(NEURAL)}{pooled}) with the lowest RMSE other than the row's own, named in "
            "brackets; for the baselines that is the best neural model. `dm_pvalue_vs_best` and "
            "`dm_best_other` in summary.json."
        )
    return [*lines, ""]


def calibration_warning(summary: Mapping) -> str | None:
    """The one-line warning for a ``backtest.calibration`` no model could use (it calibrates
    quantile forecasts; point models are left as they are), or None."""
    method = ((summary.get("config") or {}).get("backtest") or {}).get("calibration", "none")
    results = summary.get("results") or []
    if method in (None, "none") or not results or any(r.get("quantile_levels") for r in results):
        return None
    models = ", ".join(dict.fromkeys(str(r.get("model")) for r in results))
    return (
        f"backtest.calibration={method} was not applied: it calibrates quantile forecasts and "
        f"every model here ({models}) makes point forecasts; set model.quantiles (with "
        "train.loss=pinball) or add rw_ewma to the models, or set backtest.calibration=none"
    )
