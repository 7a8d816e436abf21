"""Quantile forecasts on the reference test period, scored against rw_ewma -> docs/probabilistic.md.

Runs (or, with ``--reuse``, reads) the backtest of ``configs/compare_prob.yaml`` -- daily BTC, ETH
and LTC, 2022-07-01 .. 2023-06-30; lstm, gru and performer_bilstm with quantile heads trained on
the pinball loss, and the rw_ewma / rw_empirical baselines -- trains every model once, applies
each calibration method (``none``, ``cqr``, ``aci``) to the same forecasts, and writes coverage of the 80/90% intervals, their widths, CRPS,
CRPS skill against rw_ewma and the Diebold-Mariano p-value on CRPS per model and coin. Every
number comes from the reports' ``summary.json``; nothing is typed in by hand.

Usage::

    python scripts/compare_probabilistic.py                  # run the backtests, write the doc
    python scripts/compare_probabilistic.py --reuse          # reuse reports/compare_prob_*
    python scripts/compare_probabilistic.py --calibrations cqr
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

NOMINAL = (80, 90)
TOLERANCE = 0.03  # calibrated coverage should land within +-3 points of nominal
ALPHA = 0.05


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(REPO / "configs" / "compare_prob.yaml"))
    p.add_argument("--data-dir", type=Path, default=None, help="default: a copy of ../shared")
    p.add_argument("--calibrations", default="none,cqr,aci", help="comma list of methods")
    p.add_argument("--out", type=Path, default=REPO / "docs" / "probabilistic.md")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--reuse", action="store_true", help="read the reports if their config matches")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    return p.parse_args(argv)


def _f(v, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def verdict(rec: dict) -> str:
    """Plain words: does the model beat rw_ewma on CRPS, and is it significant?"""
    skill, p = rec.get("crps_skill"), rec.get("dm_pvalue_crps_vs_rw_ewma")
    if rec["model"] == "rw_ewma":
        return "(baseline)"
    if skill is None:
        return "–"
    if skill > 0:
        return (
            "**beats**, significant" if p is not None and p < ALPHA else "better, not significant"
        )
    return "worse, significant" if p is not None and p < ALPHA else "worse, not significant"


def _within(rec: dict) -> bool:
    return all(
        rec.get(f"coverage_{c}") is not None and abs(rec[f"coverage_{c}"] - c / 100) <= TOLERANCE
        for c in NOMINAL
    )


def section(method: str, summary: dict) -> list[str]:
    recs = [r for r in summary["results"] if r.get("crps") is not None]
    out = [
        f"## calibration: {method}",
        "",
        "| coin | model | n | cov 80 % | cov 90 % | width 80 | width 90 | CRPS | CRPS skill "
        "vs rw_ewma | DM p (CRPS) | DM p (pinball) | vs rw_ewma on CRPS |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in recs:
        out.append(
            f"| {r['symbol'].split('/')[0]} | {r['model']} | {r['n']} | "
            f"{_pct(r.get('coverage_80'))} | {_pct(r.get('coverage_90'))} | "
            f"{_f(r.get('width_80'), 4)} | {_f(r.get('width_90'), 4)} | {_f(r['crps'], 5)} | "
            f"{_f(r.get('crps_skill'))} | {_f(r.get('dm_pvalue_crps_vs_rw_ewma'))} | "
            f"{_f(r.get('dm_pvalue_pinball_vs_rw_ewma'))} | {verdict(r)} |"
        )
    ok = [r for r in recs if _within(r)]
    beats = [r for r in recs if r["model"] != "rw_ewma" and (r.get("crps_skill") or 0) > 0]
    sig = [r for r in beats if (r.get("dm_pvalue_crps_vs_rw_ewma") or 1) < ALPHA]
    worse = [r for r in recs if r["model"] != "rw_ewma" and r not in beats]

    def names(rs):
        return ", ".join(f"{r['model']} ({r['symbol'].split('/')[0]})" for r in rs) or "none"

    out += [
        "",
        f"- Coverage of both the 80% and 90% intervals within ±{TOLERANCE * 100:.0f} points of "
        f"nominal: {len(ok)} of {len(recs)} model × coin rows"
        + (
            f"; outside: {names([r for r in recs if r not in ok])}." if len(ok) < len(recs) else "."
        ),
        f"- Lower CRPS than rw_ewma: {names(beats)}; of these significant at {ALPHA:.0%} "
        f"(DM on per-day CRPS): {names(sig)}.",
        f"- Not better than rw_ewma on CRPS: {names(worse)}.",
        f"- Backtest wall time {summary.get('wall_seconds', '–')} s; config hash "
        f"`{summary['config_hash']}`.",
        "",
    ]
    return out


def render(summaries: dict[str, dict], config: str) -> str:
    first = next(iter(summaries.values()))
    tr, bt = first["config"]["train"], first["config"]["backtest"]
    levels = first["config"]["model"]["quantiles"]
    out = [
        "# Probabilistic forecasts on the reference test period",
        "",
        "<!-- generated by scripts/compare_probabilistic.py (make compare-prob); "
        "do not edit by hand -->",
        "",
        f"One-day-ahead quantile forecasts (levels {levels}) for daily BTC, ETH and LTC, test "
        f"period **{first['test_start'][:10]} .. {first['test_end'][:10]}**, walk-forward with "
        f"{bt['fold_length']}-day folds and an expanding training window; every model retrained "
        f"each fold on earlier days only (up to {tr['epochs']} epochs of the pinball loss, early "
        f"stopping on the last {bt['val_fraction']:.0%} of the training days).",
        "",
        "- Baseline: **rw_ewma**, a Gaussian random walk whose volatility is the RiskMetrics EWMA "
        "(lambda 0.94) of past daily log returns; rw_empirical uses the empirical quantiles of "
        "the last 250 daily returns. Both update with every closed candle, never past it.",
        "- CRPS (approximated from the quantiles) and widths are in log-return units: 0.01 is "
        "about 1% of the price. CRPS skill = 1 − CRPS / CRPS(rw_ewma) on the same days, > 0 "
        "beats the baseline. DM p: two-sided Diebold–Mariano test on the per-day CRPS (and "
        "pinball) loss against rw_ewma, HLN-corrected.",
        "- Calibration: `none` = raw model quantiles; `cqr` = conformalized quantile regression "
        "per fold, calibration windows from the validation tail of each fold's training range "
        "(the same windows early stopping used; never a test day); `aci` = adaptive conformal "
        "inference over the test period (Gibbs & Candès 2021), step size "
        f"{bt['aci_gamma']}, using only outcomes already known.",
        "",
    ]
    out += ["**In short** (per calibration method, 15 = 5 models × 3 coins):", ""]
    for method, summary in summaries.items():
        recs = [r for r in summary["results"] if r.get("crps") is not None]
        others = [r for r in recs if r["model"] != "rw_ewma"]
        sig = [
            f"{r['model']} ({r['symbol'].split('/')[0]})"
            for r in others
            if (r.get("crps_skill") or 0) > 0 and (r.get("dm_pvalue_crps_vs_rw_ewma") or 1) < ALPHA
        ]
        out.append(
            f"- `{method}`: 80% and 90% coverage within ±3 points for "
            f"{sum(_within(r) for r in recs)} of {len(recs)}; lower CRPS than rw_ewma for "
            f"{sum((r.get('crps_skill') or 0) > 0 for r in others)} of {len(others)}, "
            f"significantly (DM p < {ALPHA}) for {', '.join(sig) or 'none'}; best CRPS skill "
            f"{max((r.get('crps_skill') or -1) for r in others):+.3f}."
        )
    out.append("")
    for method, summary in summaries.items():
        out += section(method, summary)
    out += [
        "## How these numbers were made",
        "",
        f"- Command: `make compare-prob` (`python scripts/compare_probabilistic.py`), config "
        f"`{Path(config).relative_to(REPO) if Path(config).is_relative_to(REPO) else config}`, "
        "models trained once, each calibration method applied to the same forecasts, reports in "
        "`reports/compare_prob_<method>/` (summary.json, report.md with fan chart, reliability "
        "diagram and PIT histogram).",
        f"- torch {first['versions'].get('torch')}, cryptocast "
        f"{first['versions'].get('cryptocast')}, CPU, run {first['created']}.",
        "",
    ]
    return "\n".join(out)


def run_all(args: argparse.Namespace, methods: list[str]) -> dict[str, dict]:
    """One backtest (the models are trained once), calibrated by each method in turn; each
    method gets its own report folder and summary (``--reuse``: read them when all match)."""
    import json
    import shutil
    import time

    import compare_published

    from cryptocast.backtest import run_backtest, summarise
    from cryptocast.config import load_config
    from cryptocast.evaluate.report import write_report
    from cryptocast.evaluate.walkforward import recalibrate

    overrides = list(args.overrides) + (
        [f"backtest.workers={args.workers}"] if args.workers else []
    )
    cfgs = {m: load_config(args.config, [*overrides, f"backtest.calibration={m}"]) for m in methods}
    reports = {m: REPO / "reports" / f"compare_prob_{m}" for m in methods}
    if args.reuse:
        found = {}
        for m in methods:
            path = reports[m] / "summary.json"
            if path.is_file():
                doc = json.loads(path.read_text())
                if doc.get("config_hash") == cfgs[m].hash():
                    found[m] = doc
        if len(found) == len(methods):
            print(f"reusing {', '.join(str(reports[m]) for m in methods)}")
            return found
        print("reports missing or from another config; running again")
    cfg = cfgs[methods[0]]
    tmp = None
    data_dir = args.data_dir
    if data_dir is None:
        data_dir = tmp = compare_published._shared_copy(cfg.backtest.symbols, "1d")
    t0 = time.perf_counter()

    def on_event(ev: dict) -> None:
        if ev.get("event") == "plan":
            print(f"{ev['jobs']} jobs, {ev['folds']} folds, {cfg.backtest.workers} worker(s)")
        elif ev.get("event") == "job":
            print(f"  done {' '.join(ev['job'])} ({time.perf_counter() - t0:.0f} s)", flush=True)

    try:
        results = run_backtest(cfg, data_dir, on_event)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    wall = round(time.perf_counter() - t0, 1)
    out = {}
    for m in methods:
        c = cfgs[m]
        calibrated = [recalibrate(r, m, c.backtest.aci_gamma) for r in results]
        summary, forecasts, equity = summarise(c, calibrated)
        summary["wall_seconds"] = wall
        write_report(reports[m], forecasts, summary, equity)
        out[m] = json.loads((reports[m] / "summary.json").read_text())
        print(f"{m}: report {reports[m]}")
    return out


def main(argv: list[str] | None = None) -> int:
    from cryptocast.errors import CryptocastError

    args = parse_args(argv)
    methods = [m.strip() for m in args.calibrations.split(",") if m.strip()]
    try:
        summaries = run_all(args, methods)
    except CryptocastError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(summaries, args.config), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
