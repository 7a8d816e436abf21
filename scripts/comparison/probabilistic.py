"""``compare.py probabilistic``: quantile forecasts scored against rw_ewma -> docs/probabilistic.md.

Runs (or, with ``--reuse``, reads) the backtests of ``configs/compare_prob.yaml`` (daily BTC, ETH
and LTC, 2022-07-01 .. 2023-06-30) and ``configs/compare_prob_1h.yaml`` (the same coins and year
on hourly candles): lstm, gru and performer_bilstm with quantile heads trained on the pinball loss,
the volatility-driven quantile models and the rw_ewma / rw_empirical baselines. Per config every
model is trained once and each calibration method (``none``, ``cqr``, ``aci``) applied to the same
forecasts; the page gives, per timeframe, the issue's aims, then per method coverage of the 80/90%
intervals, widths, CRPS, its skill and Diebold-Mariano p-value against rw_ewma, the VaR backtests,
98% coverage and the 90% MCS on CRPS. Every number comes from the reports' ``summary.json``
(``<report_dir>_<method>/``); nothing is typed in by hand.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from scripts.comparison import common
from scripts.comparison.common import REPO, coin, fmt, fmt_p

CONFIG = "compare_prob.yaml"
HOURLY = "compare_prob_1h.yaml"  # the page's second section
HELP = "quantile models vs rw_ewma, calibration none/cqr/aci -> docs/probabilistic.md"
COMMAND = "python scripts/compare.py probabilistic"

NOMINAL = (80, 90)
TOLERANCE = 0.03  # calibrated coverage should land within +-3 points of nominal
ALPHA = 0.05


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--calibrations", default="none,cqr,aci", help="comma list of methods")
    p.add_argument("--out", type=Path, default=REPO / "docs" / "probabilistic.md")
    p.add_argument(
        "--hourly-config",
        default=str(REPO / "configs" / HOURLY),
        help="the hourly section's config ('' leaves the hourly section out)",
    )


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
        f"### calibration: {method}",
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
            f"{fmt(r.get('crps_skill'))} | {fmt_p(r.get('dm_pvalue_crps_vs_rw_ewma'))} | "
            f"{fmt_p(r.get('dm_pvalue_pinball_vs_rw_ewma'))} | {verdict(r)} |"
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
        f"(DM on per-origin CRPS): {_names([r for r in beats if _significant(r)])}.",
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
        "short = the 95%/99% one. MCS: in the 90% Model Confidence Set on per-origin CRPS.",
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


def _aims(summary: dict) -> list[str]:
    """The issue's two backtest aims on one timeframe's runs: a model beats rw_ewma on CRPS with
    DM p < ALPHA on >= 2 of the 3 coins; 95% and 99% VaR pass Kupiec and Christoffersen on all
    three coins (uncalibrated forecasts: calibration shifts the quantiles the VaR is read from)."""
    recs = _scored(summary)
    coins = sorted({coin(r) for r in recs})
    models = list(dict.fromkeys(r["model"] for r in recs if r["model"] != "rw_ewma"))
    sig = {m: [coin(r) for r in recs if r["model"] == m and _significant(r)] for m in models}
    best = max(models, key=lambda m: len(sig[m]), default=None)
    passes = {m: [coin(r) for r in recs if r["model"] == m and _var_passes(r)] for m in models}
    every = [m for m in ["rw_ewma", *models] if len(
        [r for r in recs if r["model"] == m and _var_passes(r)]) == len(coins)]  # fmt: skip
    crps_met = best is not None and len(sig[best]) >= 2
    return [
        f"- CRPS aim (a model beats rw_ewma, DM p < {ALPHA}, on at least 2 of {len(coins)} "
        f"coins): **{'met' if crps_met else 'not met'}** — "
        + "; ".join(f"`{m}` on {', '.join(c) or 'none'}" for m, c in sig.items() if c)
        + ("." if any(sig.values()) else "no model on any coin."),
        f"- VaR aim (95% and 99%, both tails, Kupiec and Christoffersen p > {ALPHA} on every "
        f"coin): **{'met' if every else 'not met'}** — every test passed on all "
        f"{len(coins)} coins by {', '.join(f'`{m}`' for m in every) or 'no model'}"
        + "".join(
            f"; `{m}` on {len(passes[m])} of {len(coins)}"
            for m in models
            if 0 < len(passes[m]) < len(coins)
        )
        + ".",
    ]


def _period_text(first: dict) -> str:
    """The run's timeframe, folds and training window in words."""
    cfg = first["config"]
    bt, tr = cfg["backtest"], cfg["train"]
    tf = bt["timeframes"][0]
    folds = (
        f"{bt['fold_period']} folds"
        if bt.get("fold_period")
        else f"{bt['fold_length']}-candle folds"
    )
    window = (
        f"a rolling window of the last {bt['train_length']:,} candles"
        if bt["window"] == "rolling"
        else "an expanding training window"
    )
    extra = ""
    if tr.get("window_stride", 1) > 1 or bt.get("warm_start"):
        extra = (
            f"; the neural models train on every {tr.get('window_stride', 1)}th window"
            + (
                f", warm-started from the previous fold ({bt['warm_epochs']} epochs)"
                if bt.get("warm_start")
                else ""
            )  # fmt: skip
        )
    return (
        f"{ {'1d': 'Daily', '1h': 'Hourly'}.get(tf, tf) } BTC, ETH and LTC, one candle ahead, quantile levels "
        f"{cfg['model']['quantiles']}, test period **{first['test_start'][:10]} .. "
        f"{first['test_end'][:10]}**, walk-forward with {folds} and {window}; every model refit "
        f"each fold on earlier candles only (up to {tr['epochs']} epochs of the pinball loss, "
        f"early stopping on the last {bt['val_fraction']:.0%} of the training candles{extra})."
    )


def timeframe_section(summaries: dict[str, dict], config: str) -> list[str]:
    """One timeframe's page section: setting, aims, short verdicts, then a table per method."""
    first = next(iter(summaries.values()))
    tf = first["config"]["backtest"]["timeframes"][0]
    recs = _scored(first)
    n_models, n_coins = len({r["model"] for r in recs}), len({coin(r) for r in recs})
    out = [
        f"## {'Daily' if tf == '1d' else 'Hourly' if tf == '1h' else tf} candles ({tf})",
        "",
        _period_text(first) + f" Config `{common.shown(config)}`.",
        "",
        "**Aims** (issue 24; `none` calibration):",
        "",
        *_aims(summaries.get("none", first)),
        "",
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
    return out


def render(runs: list[tuple[dict[str, dict], str]]) -> str:
    """The page from each timeframe's runs (``(summaries by method, config path)``)."""
    first = next(iter(runs[0][0].values()))
    bt = first["config"]["backtest"]
    out = [
        "# Probabilistic forecasts on the reference test period",
        "",
        f"<!-- generated by {COMMAND.removeprefix('python ')} (make compare-prob); "
        "do not edit by hand -->",
        "",
        "- Baseline: **rw_ewma**, a Gaussian random walk whose volatility is the RiskMetrics EWMA "
        "(lambda 0.94) of the series' past log returns; rw_empirical uses the empirical quantiles "
        "of its last 250 log returns. Both update with every closed candle, never past it.",
        "- Volatility-driven quantiles (docs/quantiles.md): a volatility forecast (RiskMetrics "
        "EWMA, GARCH(1,1), HAR on squared returns) times quantiles of the training candles' "
        "standardized residuals: empirical (`fhs_*`, filtered historical simulation), a fitted "
        "Student-t (`t_ewma`) or GARCH's own t / skewed-t innovations (`garch_t`, `garch_skewt`).",
        "- CRPS (approximated from the quantiles) and widths are in log-return units: 0.01 is "
        "about 1% of the price. CRPS skill = 1 − CRPS / CRPS(rw_ewma) on the same origins, > 0 "
        "beats the baseline. DM p: two-sided Diebold–Mariano test on the per-origin CRPS (and "
        "pinball) loss against rw_ewma, HLN-corrected.",
        "- Calibration: `none` = raw model quantiles; `cqr` = conformalized quantile regression "
        "per fold, calibration windows from the validation tail of each fold's training range "
        "(the same windows early stopping used; never a test candle); `aci` = adaptive conformal "
        "inference over the test period (Gibbs & Candès 2021), step size "
        f"{bt['aci_gamma']}, using only outcomes already known.",
        "- The daily job's calibrated intervals (the third aim) are measured by replaying the "
        "reference year through `cryptocast forecast`: `scripts/replay_calibration.py`, figures "
        "in [quantiles.md](quantiles.md).",
        "",
    ]
    for summaries, config in runs:
        out += timeframe_section(summaries, config)
    out += [
        "## How these numbers were made",
        "",
        f"- Command: `make compare-prob` (`{COMMAND}`), configs "
        + ", ".join(f"`{common.shown(c)}`" for _, c in runs)
        + "; per config the models are trained once and each calibration method applied to the "
        "same forecasts; reports in `<report_dir>_<method>/` (summary.json, report.md with fan "
        "chart, reliability diagram and PIT histogram).",
        f"- torch {first['versions'].get('torch')}, cryptocast "
        f"{first['versions'].get('cryptocast')}, CPU; run "
        + ", ".join(next(iter(s.values()))["created"] for s, _ in runs)
        + "; backtest wall time "
        + ", ".join(f"{next(iter(s.values())).get('wall_seconds', '–')} s" for s, _ in runs)
        + ".",
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
    """The backtests (or their reports) of the daily and the hourly config, then the page."""
    methods = [m.strip() for m in args.calibrations.split(",") if m.strip()]
    configs = [args.config] + ([str(args.hourly_config)] if args.hourly_config else [])
    runs = [
        (run_all(argparse.Namespace(**{**vars(args), "config": c}), methods), c) for c in configs
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(runs), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0
