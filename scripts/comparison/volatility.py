"""``compare.py volatility``: realized-volatility forecasts beside the baselines -> docs/volatility.md.

Runs (or, with ``--reuse``, reads) the backtest of ``configs/compare_vol.yaml`` once (its own
seed): the same period and folds as ``price`` with ``features.target=realized_vol``, every model
beside ``vol_persistence``, ``har``, ``ewma_vol`` and ``garch``. The results section of the page
(between its ``<!-- results: ... -->`` and ``<!-- end results -->`` markers) is rewritten from the
report's ``summary.json`` alone; the rest of the page is left as it is.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from scripts.comparison import common
from scripts.comparison.common import REPO, coin, fmt, fmt_p

CONFIG = "compare_vol.yaml"
HELP = "volatility forecasts vs vol_persistence/HAR/EWMA/GARCH -> docs/volatility.md"
COMMAND = "python scripts/compare.py volatility"

START = "<!-- results:"
END = "<!-- end results -->"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out",
        type=Path,
        default=REPO / "docs" / "volatility.md",
        help="the page whose results section is rewritten",
    )


def verdict(summary: dict, model: str = "performer_bilstm", alpha: float = 0.05) -> str:
    """Does ``model`` beat ``har`` on QLIKE with DM p < alpha on every coin? One sentence."""
    recs = [r for r in summary["results"] if r["model"] == model]
    if not recs:
        return f"`{model}` was not in this run."
    wins, parts = [], []
    for r in recs:
        skill, p = r.get("skill_qlike"), r.get("dm_pvalue_vs_har")
        win = skill is not None and p is not None and skill > 0 and p < alpha
        wins.append(win)
        parts.append(f"{coin(r)}: skill {fmt(skill)}, DM p {fmt_p(p)}")
    n_win = sum(wins)
    head = (
        f"**Yes**: `{model}` beats `har` on QLIKE with DM p < {alpha} on all {len(recs)} coins"
        if all(wins)
        else f"**No**: `{model}` beats `har` on QLIKE with DM p < {alpha} on {n_win} of "
        f"{len(recs)} coins"
    )
    return f"{head} ({'; '.join(parts)})."


def _mcs(r: dict) -> str:
    """In the 90% Model Confidence Set on QLIKE (its p-value); – where the run has none."""
    if "mcs_qlike_90" not in r:
        return "–"
    return f"{'yes' if r['mcs_qlike_90'] else 'no'} ({fmt_p(r.get('mcs_pvalue_qlike'))})"


def render_results(summary: dict, report: Path) -> str:
    cfg = summary["config"]
    bt, tr, ft = cfg["backtest"], cfg["train"], cfg["features"]
    first, last, n = common.period(summary)
    out = [
        "",
        f"Daily BTC, ETH, LTC (Binance spot), one-day-ahead forecasts of annualised realized "
        f"volatility for the days after **{first} .. {last}** "
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
        "worse). MZ R²: Mincer–Zarnowitz on variances. Bias ratio: mean realised / mean "
        "forecast variance (1 is unbiased). SPA p: Hansen's SPA test of the model against har "
        "(small: it beats har). MCS: in the 90% Model Confidence Set on QLIKE over the coin's "
        "models (not significantly worse than the best). Vol-targeting: position = "
        f"min({bt['max_position']:g}, {bt['vol_target']:g} / forecast), "
        f"{bt['fee_bps']:g} bp fee + {bt['slippage_bps']:g} bp slippage per unit of change; "
        "its realised annual volatility, the RMSE of its 30-day realised volatility around the "
        f"{bt['vol_target']:g} target, and its Sharpe.",
        "",
        "| coin | model | n | RMSE vol | QLIKE | skill vs har | DM p vs har | SPA p vs har "
        "| 90% MCS | skill vs vol_persistence | DM p vs vol_persistence | MZ R² | bias ratio "
        "| VT realised vol | VT vol error | VT Sharpe |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in summary["results"]:
        out.append(
            f"| {coin(r)} | {r['model']} | {r['n']} | {fmt(r.get('rmse_vol'))} | "
            f"{fmt(r.get('qlike'))} | {fmt(r.get('skill_qlike'))} | "
            f"{fmt_p(r.get('dm_pvalue_vs_har'))} | {fmt_p(r.get('spa_p_vs_har'))} | "
            f"{_mcs(r)} | {fmt(r.get('skill_qlike_persistence'))} | "
            f"{fmt_p(r.get('dm_pvalue_vs_vol_persistence'))} | {fmt(r.get('mz_r2'))} | "
            f"{fmt(r.get('bias_ratio'), 2)} | "
            f"{fmt(r.get('vt_annual_vol'))} | {fmt(r.get('vt_vol_error'))} | "
            f"{fmt(r.get('vt_sharpe'), 2)} |"
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
        f"- Command: `make compare-vol` (`{COMMAND}`), config "
        f"`configs/compare_vol.yaml` (hash `{summary['config_hash']}`), report folder "
        f"`{common.shown(report)}`.",
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


def _markers(page: str) -> tuple[int, int]:
    start, end = page.find(START), page.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"error: the page lacks the {START} ... {END} markers")
    return start, end


def splice(page: str, summary: dict, report: Path) -> str:
    """``page`` with the text between the results markers replaced by ``render_results``."""
    start, end = _markers(page)
    head = page[: page.index("\n", start) + 1]
    return head + render_results(summary, report) + page[end:]


def run(args: argparse.Namespace) -> int:
    """One backtest (or its report), spliced into the results section of ``--out``."""
    _markers(args.out.read_text(encoding="utf-8"))  # before minutes of backtest, not after
    cfg = common.load(args)
    report = common.report_root(args, cfg)
    summary = common.reused(report, cfg) if args.reuse else None
    if summary is not None:
        print(f"reusing {report} (config {cfg.hash()})")
    else:
        results, wall = common.backtest(cfg, args.data_dir)
        summary = common.write(report, cfg, results, wall)
        print(f"backtest done in {wall} s; report {report}")
    out = args.out
    out.write_text(splice(out.read_text(encoding="utf-8"), summary, report), "utf-8")
    print(f"wrote {out}")
    return 0
