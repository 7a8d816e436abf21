"""The results section of ``docs/volatility.md``, from a realized-volatility backtest summary alone.

Used by ``scripts/compare_published.py --vol`` (``make compare-vol``): it replaces the text between
the page's ``<!-- results: ... -->`` and ``<!-- end results -->`` markers. Every number comes from
the report's ``summary.json``.
"""

from __future__ import annotations

from pathlib import Path

START = "<!-- results:"
END = "<!-- end results -->"
BASELINES = ("vol_persistence", "har", "ewma_vol", "garch")
NEURAL = ("performer_bilstm", "lstm", "gru", "transformer")


def _f(v, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _p(v) -> str:
    if v is None:
        return "–"
    return "< 0.001" if v < 0.001 else f"{v:.3f}"


def verdict(summary: dict, model: str = "performer_bilstm", alpha: float = 0.05) -> str:
    """Does ``model`` beat ``har`` on QLIKE with DM p < alpha on every coin? One sentence."""
    recs = [r for r in summary["results"] if r["model"] == model]
    if not recs:
        return f"`{model}` was not in this run."
    wins, parts = [], []
    for r in recs:
        coin = r["symbol"].split("/")[0]
        skill, p = r.get("skill_qlike"), r.get("dm_pvalue_vs_har")
        win = skill is not None and p is not None and skill > 0 and p < alpha
        wins.append(win)
        parts.append(f"{coin}: skill {_f(skill)}, DM p {_p(p)}")
    n_win = sum(wins)
    head = (
        f"**Yes**: `{model}` beats `har` on QLIKE with DM p < {alpha} on all {len(recs)} coins"
        if all(wins)
        else f"**No**: `{model}` beats `har` on QLIKE with DM p < {alpha} on {n_win} of "
        f"{len(recs)} coins"
    )
    return f"{head} ({'; '.join(parts)})."


def render_results(summary: dict, report: Path, repo: Path) -> str:
    cfg = summary["config"]
    bt, tr, ft = cfg["backtest"], cfg["train"], cfg["features"]
    ranges = summary["data_ranges"]
    firsts = sorted({v["test_first_origin"][:10] for v in ranges.values()})
    lasts = sorted({v["test_last_origin"][:10] for v in ranges.values()})
    n = sorted({v["origins"] for v in ranges.values()})
    try:
        shown = report.resolve().relative_to(repo)
    except ValueError:
        shown = report
    out = [
        "",
        f"Daily BTC, ETH, LTC (Binance spot), one-day-ahead forecasts of annualised realized "
        f"volatility for the days after **{firsts[0]} .. {lasts[-1]}** "
        f"({'/'.join(map(str, n))} forecast origins per coin; days without a complete-enough RV are "
        f"not scored), walk-forward: {bt['fold_length']}-day folds, {bt['window']} window, every "
        "model refit each fold on earlier days only.",
        "",
        "### Does performer_bilstm beat HAR?",
        "",
        verdict(summary),
        "",
        "### Every model beside the baselines",
        "",
        "QLIKE: lower is better. skill = 1 − QLIKE / QLIKE(har) (> 0 beats har). DM p: two-sided "
        "Diebold–Mariano on QLIKE losses (a small p with negative skill means significantly "
        "worse). MZ R²: Mincer–Zarnowitz on variances. Vol-targeting: position = "
        f"min({bt['max_position']:g}, {bt['vol_target']:g} / forecast), "
        f"{bt['fee_bps']:g} bp fee + {bt['slippage_bps']:g} bp slippage per unit of change; "
        "its realised annual volatility, the RMSE of its 30-day realised volatility around the "
        f"{bt['vol_target']:g} target, and its Sharpe.",
        "",
        "| coin | model | n | RMSE vol | QLIKE | skill vs har | DM p vs har "
        "| skill vs vol_persistence | DM p vs vol_persistence | MZ R² "
        "| VT realised vol | VT vol error | VT Sharpe |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in summary["results"]:
        out.append(
            f"| {r['symbol'].split('/')[0]} | {r['model']} | {r['n']} | {_f(r.get('rmse_vol'))} | "
            f"{_f(r.get('qlike'))} | {_f(r.get('skill_qlike'))} | {_p(r.get('dm_pvalue_vs_har'))} | "
            f"{_f(r.get('skill_qlike_persistence'))} | "
            f"{_p(r.get('dm_pvalue_vs_vol_persistence'))} | {_f(r.get('mz_r2'))} | "
            f"{_f(r.get('vt_annual_vol'))} | {_f(r.get('vt_vol_error'))} | "
            f"{_f(r.get('vt_sharpe'), 2)} |"
        )
    flagged = [
        f"{r['model']} on {r['symbol']}" for r in summary["results"] if r.get("leakage_suspect")
    ]
    out += [
        "",
        "Leakage check: " + (", ".join(flagged) + " flagged." if flagged else "no model flagged."),
        "",
        "### How these numbers were made",
        "",
        f"- Command: `make compare-vol` (`python scripts/compare_published.py --vol`), config "
        f"`configs/compare_vol.yaml` (hash `{summary['config_hash']}`), report folder `{shown}`.",
        f"- Target `{ft['target']}` from `{ft['rv_source']}` candles (days with fewer than "
        f"{ft['rv_min_hours']} hourly returns dropped), lookback {ft['lookback']} days, horizon "
        f"{ft['horizon']}; scalers fit on each fold's training rows only.",
        f"- Neural models: up to {tr['epochs']} epochs, early stopping (patience "
        f"{tr['patience']}) on the last {bt['val_fraction']:.0%} of each fold's training days, "
        f"seed {tr['seed']}, CPU, {tr['loss']} loss on log RV. One seed: a single run, not an "
        "average.",
        f"- Run {summary['created']}"
        + (f" in {summary['wall_seconds']} s" if "wall_seconds" in summary else "")
        + f"; torch {summary['versions'].get('torch')}.",
        "",
    ]
    return "\n".join(out)


def splice(page: str, summary: dict, report: Path, repo: Path) -> str:
    """``page`` with the text between the results markers replaced by ``render_results``."""
    start = page.find(START)
    end = page.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"error: the page lacks the {START} ... {END} markers")
    head = page[: page.index("\n", start) + 1]
    return head + render_results(summary, report, repo) + page[end:]
