"""``compare.py probabilistic``: quantile forecasts scored against rw_ewma -> docs/probabilistic.md.

Runs (or, with ``--reuse``, reads) the backtest of ``configs/compare_prob.yaml`` -- daily BTC, ETH
and LTC, 2022-07-01 .. 2023-06-30; lstm, gru and performer_bilstm with quantile heads trained on
the pinball loss, and the rw_ewma / rw_empirical baselines -- trains every model once, applies
each calibration method (``none``, ``cqr``, ``aci``) to the same forecasts, and writes coverage of
the 80/90% intervals, their widths, CRPS, CRPS skill against rw_ewma and the Diebold-Mariano
p-value on CRPS per model and coin. Every number comes from the reports' ``summary.json``
(``<report_dir>_<method>/``, reports/compare_prob_<method>/ by default); nothing is typed in by
hand.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from scripts.comparison import common
from scripts.comparison.common import REPO, coin, fmt

CONFIG = "compare_prob.yaml"
HELP = "quantile models vs rw_ewma, calibration none/cqr/aci -> docs/probabilistic.md"
COMMAND = "python scripts/compare.py probabilistic"

NOMINAL = (80, 90)
TOLERANCE = 0.03  # calibrated coverage should land within +-3 points of nominal
ALPHA = 0.05


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--calibrations", default="none,cqr,aci", help="comma list of methods")
    p.add_argument("--out", type=Path, default=REPO / "docs" / "probabilistic.md")


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


def _scored(summary: dict) -> list[dict]:
    return [r for r in summary["results"] if r.get("crps") is not None]


def _beats(rec: dict) -> bool:
    return rec["model"] != "rw_ewma" and (rec.get("crps_skill") or 0) > 0


def _significant(rec: dict) -> bool:
    return _beats(rec) and (rec.get("dm_pvalue_crps_vs_rw_ewma") or 1) < ALPHA


def _names(recs: list[dict]) -> str:
    return ", ".join(f"{r['model']} ({coin(r)})" for r in recs) or "none"


def section(method: str, summary: dict) -> list[str]:
    recs = _scored(summary)
    out = [
        f"## calibration: {method}",
        "",
        "| coin | model | n | cov 80 % | cov 90 % | width 80 | width 90 | CRPS | CRPS skill "
        "vs rw_ewma | DM p (CRPS) | DM p (pinball) | vs rw_ewma on CRPS |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in recs:
        out.append(
            f"| {coin(r)} | {r['model']} | {r['n']} | "
            f"{_pct(r.get('coverage_80'))} | {_pct(r.get('coverage_90'))} | "
            f"{fmt(r.get('width_80'), 4)} | {fmt(r.get('width_90'), 4)} | {fmt(r['crps'], 5)} | "
            f"{fmt(r.get('crps_skill'))} | {fmt(r.get('dm_pvalue_crps_vs_rw_ewma'))} | "
            f"{fmt(r.get('dm_pvalue_pinball_vs_rw_ewma'))} | {verdict(r)} |"
        )
    ok = [r for r in recs if _within(r)]
    beats = [r for r in recs if _beats(r)]
    worse = [r for r in recs if r["model"] != "rw_ewma" and r not in beats]
    out += [
        "",
        f"- Coverage of both the 80% and 90% intervals within ±{TOLERANCE * 100:.0f} points of "
        f"nominal: {len(ok)} of {len(recs)} model × coin rows"
        + (
            f"; outside: {_names([r for r in recs if r not in ok])}."
            if len(ok) < len(recs)
            else "."
        ),
        f"- Lower CRPS than rw_ewma: {_names(beats)}; of these significant at {ALPHA:.0%} "
        f"(DM on per-day CRPS): {_names([r for r in beats if _significant(r)])}.",
        f"- Not better than rw_ewma on CRPS: {_names(worse)}.",
        f"- Backtest wall time {summary.get('wall_seconds', '–')} s; config hash "
        f"`{summary['config_hash']}`.",
        "",
    ]
    return out + risk_section(recs)


VAR_KEYS = (("95_lo", "VaR 95% long"), ("95_hi", "VaR 95% short"), ("99_lo", "VaR 99% long"),
            ("99_hi", "VaR 99% short"))  # fmt: skip


def _var_cell(rec: dict, key: str) -> str:
    if rec.get(f"var{key}_rate") is None:
        return "–"
    p_uc, p_cc = rec.get(f"var{key}_p_uc"), rec.get(f"var{key}_p_cc")
    return f"{_pct(rec[f'var{key}_rate'])} ({fmt(p_uc, 2)} / {fmt(p_cc, 2)})"


def _var_passes(rec: dict) -> bool:
    """Every VaR test the record holds passes Kupiec and Christoffersen at ALPHA."""
    ps = [rec.get(f"var{k}_{t}") for k, _ in VAR_KEYS for t in ("p_uc", "p_ind", "p_cc")]
    return all(p is not None and p > ALPHA for p in ps) and any(p is not None for p in ps)


def risk_section(recs: list[dict]) -> list[str]:
    """VaR backtests and the Model Confidence Set (evaluate/risk.py), when the records hold them."""
    if not any(r.get("var_backtests") for r in recs):
        return []
    out = [
        "Risk (one-step return): VaR cells are the exceedance rate in % (Kupiec p / "
        "Christoffersen conditional-coverage p; > 0.05 passes); long = the 5%/1% quantile, "
        "short = the 95%/99% one. MCS: in the 90% Model Confidence Set on per-day CRPS.",
        "",
        "| coin | model | cov 98 % | " + " | ".join(label for _, label in VAR_KEYS)
        + " | MCS 90% (p) |",
        "|---|---|---:|" + "---:|" * len(VAR_KEYS) + "---|",
    ]  # fmt: skip
    for r in recs:
        mcs = r.get("mcs_crps_90")
        cells = [coin(r), r["model"], _pct(r.get("coverage_98"))]
        cells += [_var_cell(r, k) for k, _ in VAR_KEYS]
        cells.append(
            "–" if mcs is None else f"{'in' if mcs else 'out'} ({fmt(r.get('mcs_pvalue_crps'), 2)})"
        )
        out.append("| " + " | ".join(cells) + " |")
    out += [
        "",
        f"- Every VaR test passed (Kupiec, Christoffersen independence and conditional coverage, "
        f"p > {ALPHA}, both tails, 95% and 99%): {_names([r for r in recs if _var_passes(r)])}.",
        f"- Outside the 90% MCS on CRPS: {_names([r for r in recs if r.get('mcs_crps_90') is False])}.",
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
        f"<!-- generated by {COMMAND.removeprefix('python ')} (make compare-prob); "
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
        "- Volatility-driven quantiles (docs/quantiles.md): a volatility forecast (RiskMetrics "
        "EWMA, GARCH(1,1), HAR on squared returns) times quantiles of the training days' "
        "standardized residuals: empirical (`fhs_*`, filtered historical simulation), a fitted "
        "Student-t (`t_ewma`) or GARCH's own t / skewed-t innovations (`garch_t`, `garch_skewt`).",
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
    n_models = len({r["model"] for r in _scored(first)})
    n_coins = len({coin(r) for r in _scored(first)})
    out += [
        f"**In short** (per calibration method, {n_models * n_coins} = {n_models} models × "
        f"{n_coins} coins):",
        "",
    ]
    for method, summary in summaries.items():
        recs = _scored(summary)
        others = [r for r in recs if r["model"] != "rw_ewma"]
        sig = [f"{r['model']} ({coin(r)})" for r in others if _significant(r)]
        out.append(
            f"- `{method}`: 80% and 90% coverage within ±3 points for "
            f"{sum(_within(r) for r in recs)} of {len(recs)}; lower CRPS than rw_ewma for "
            f"{sum(_beats(r) for r in others)} of {len(others)}, "
            f"significantly (DM p < {ALPHA}) for {', '.join(sig) or 'none'}; best CRPS skill "
            f"{max((r.get('crps_skill') or -1) for r in others):+.3f}."
        )
    out.append("")
    for method, summary in summaries.items():
        out += section(method, summary)
    out += [
        "## How these numbers were made",
        "",
        f"- Command: `make compare-prob` (`{COMMAND}`), config `{common.shown(config)}`, "
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
    from cryptocast.evaluate.walkforward import recalibrate

    cfgs = {m: common.load(args, f"backtest.calibration={m}") for m in methods}
    root = common.report_root(args, cfgs[methods[0]])
    reports = {m: root.parent / f"{root.name}_{m}" for m in methods}
    if args.reuse:
        found = {m: common.reused(reports[m], cfgs[m]) for m in methods}
        if all(found.values()):
            print(f"reusing {', '.join(str(reports[m]) for m in methods)}")
            return found
        print("reports missing or from another config; running again")
    results, wall = common.backtest(cfgs[methods[0]], args.data_dir)
    out = {}
    for m in methods:
        c = cfgs[m]
        calibrated = [recalibrate(r, m, c.backtest.aci_gamma) for r in results]
        out[m] = common.write(reports[m], c, calibrated, wall)
        print(f"{m}: report {reports[m]}")
    return out


def run(args: argparse.Namespace) -> int:
    """The backtest (or its reports), then the page at ``--out``."""
    methods = [m.strip() for m in args.calibrations.split(",") if m.strip()]
    summaries = run_all(args, methods)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(summaries, args.config), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0
