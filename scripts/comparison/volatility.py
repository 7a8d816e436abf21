"""``compare.py volatility``: realized-volatility forecasts beside the baselines -> docs/volatility.md.

Runs (or, with ``--reuse``, reads) the backtest of ``configs/compare_vol.yaml`` once per training
seed (>= 3, ``--seeds``; the price mode's seed mechanism, report folders ``<report_dir>/seed-N``):
the same period and folds as ``price`` with ``features.target=realized_vol``, every model beside
``vol_persistence``, ``har``, ``ewma_vol`` and ``garch``. Each seed's run holds every model, so its
90% Model Confidence Set and SPA tests are over the whole set of that seed; the deterministic
baselines give the same forecasts in every seed and are shown once, the neural models as the mean
over seeds with the spread. The results section of the page (between its ``<!-- results: ... -->``
and ``<!-- end results -->`` markers) is rewritten from the reports' ``summary.json`` alone, with
the recommended model picked by the rule stated on the page; the rest of the page is left as it is.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from scripts.comparison import common
from scripts.comparison.common import REPO, coin, fmt, seed_cell, seed_p_cell
from scripts.comparison.price import run_or_reuse

CONFIG = "compare_vol.yaml"
HELP = (
    "volatility forecasts over >= 3 seeds vs vol_persistence/HAR/EWMA/GARCH -> docs/volatility.md"
)
COMMAND = "python scripts/compare.py volatility"
RECOMMENDED = REPO / "configs" / "volatility.yaml"

START = "<!-- results:"
END = "<!-- end results -->"
KEYS = (
    "n", "rmse_vol", "qlike", "skill_qlike", "dm_pvalue_vs_har", "spa_p_vs_har", "mcs_qlike_90",
    "mcs_pvalue_qlike", "mz_r2", "bias_ratio", "vt_annual_vol", "vt_vol_error", "vt_sharpe",
)  # fmt: skip


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", default="0,1,2", help="training seeds, comma separated (>= 3)")
    p.add_argument(
        "--out",
        type=Path,
        default=REPO / "docs" / "volatility.md",
        help="the page whose results section is rewritten",
    )


def pool(summaries: list[dict]) -> dict[tuple[str, str], dict[str, list[float]]]:
    """Per (coin, model), in the order of the first run: every seed's value of each figure
    (``mcs_qlike_90`` as 1/0); a deterministic model's values repeat."""
    out: dict[tuple[str, str], dict[str, list[float]]] = {}
    for summary in summaries:
        for r in summary["results"]:
            vals = out.setdefault((coin(r), r["model"]), {k: [] for k in KEYS})
            for k in KEYS:
                if r.get(k) is not None:
                    vals[k].append(float(r[k]))
    return out


def _mean(vals: list[float]) -> float | None:
    return statistics.fmean(vals) if vals else None


def _mcs_cell(vals: dict[str, list[float]]) -> str:
    ins = vals["mcs_qlike_90"]
    if not ins:
        return "–"
    if len(set(ins)) == 1 and len(set(vals["mcs_pvalue_qlike"])) <= 1:
        return f"{'yes' if ins[0] else 'no'} ({seed_p_cell(vals['mcs_pvalue_qlike'])})"
    return f"{int(sum(ins))}/{len(ins)} seeds"


def beats_har(vals: dict[str, list[float]], alpha: float = 0.05) -> bool:
    """Lower QLIKE than har with DM p < alpha in every seed."""
    skill, p = vals["skill_qlike"], vals["dm_pvalue_vs_har"]
    if not skill or len(skill) != len(p):
        return False
    return all(s > 0 and q < alpha for s, q in zip(skill, p, strict=True))


def recommend(pooled: dict) -> tuple[str, str]:
    """The rule stated on the page: among the models in the 90% MCS on every coin in every seed,
    the lowest QLIKE averaged over coins (and seeds); if none is, the model in the set most often,
    then the lowest mean QLIKE. Returns the model and the sentence saying why."""
    coins = sorted({c for c, _ in pooled})
    models = list(dict.fromkeys(m for _, m in pooled))
    stats = {}
    for m in models:
        per = [pooled.get((c, m)) for c in coins]
        if any(v is None or not v["qlike"] or not v["mcs_qlike_90"] for v in per):
            continue
        ins = [x for v in per for x in v["mcs_qlike_90"]]
        stats[m] = (sum(ins) / len(ins), statistics.fmean(_mean(v["qlike"]) for v in per))
    if not stats:
        raise SystemExit("error: no model has QLIKE and MCS results on every coin")
    always = {m: s for m, s in stats.items() if s[0] == 1.0}
    if always:
        best = min(always, key=lambda m: always[m][1])
        why = (
            f"in the 90% MCS on all {len(coins)} coins (every seed) are "
            + ", ".join(f"`{m}`" for m in sorted(always, key=lambda m: always[m][1]))
            + f"; the lowest mean QLIKE among them is `{best}`'s ({always[best][1]:.3f})"
        )
    else:
        best = min(stats, key=lambda m: (-stats[m][0], stats[m][1]))
        why = (
            f"no model is in the 90% MCS on every coin; `{best}` is in it most often "
            f"({stats[best][0]:.0%} of coin-seeds) with mean QLIKE {stats[best][1]:.3f}"
        )
    return best, why


def _configured() -> str | None:
    """``model.name`` of configs/volatility.yaml, None when it is absent."""
    if not RECOMMENDED.is_file():
        return None
    from cryptocast.config.schema import load_config

    return load_config(str(RECOMMENDED)).model.name


def _aim_line(pooled: dict, model: str) -> tuple[bool, str]:
    """Whether ``model`` meets the issue's aim on this run, and the sentence saying so."""
    coins = sorted({c for c, _ in pooled})
    wins = [c for c in coins if (c, model) in pooled and beats_har(pooled[(c, model)])]
    bits = [
        f"{c}: skill {fmt(_mean(pooled[(c, model)]['skill_qlike']))}, "
        f"DM p {seed_p_cell(pooled[(c, model)]['dm_pvalue_vs_har'])}"
        for c in coins
        if (c, model) in pooled
    ]
    pb = {c: pooled.get((c, "performer_bilstm"), {}).get("mcs_qlike_90", []) for c in coins}
    pb_all = all(v and all(v) for v in pb.values())
    met = len(wins) >= 2 and pb_all
    return met, (
        f"**Aim {'met' if met else 'not met'}.** `{model}` beats `har` on QLIKE with DM p < 0.05 "
        f"(in every seed) on {len(wins)} of {len(coins)} coins (needed: 2) ({'; '.join(bits)}); "
        "`performer_bilstm` is in the 90% MCS on "
        + ", ".join(f"{c} {int(sum(v))}/{len(v)} seeds" for c, v in pb.items())
        + f" (needed: all three coins): {'yes' if pb_all else 'no'}."
    )


def aim(pooled: dict, best: str, why: str, main: bool = True) -> list[str]:
    """The recommendation and the issue's aim, said plainly. ``main``: the section the
    recommendation is made from; another section says what the same rule picks there and judges
    the configured model by the aim."""
    configured = _configured()
    if not main:
        judged = configured or best
        return [
            f"By the same rule this target picks **`{best}`** ({why}); the recommendation is made "
            "on the hourly-RV section above, whose test period is twice as long.",
            "",
            _aim_line(pooled, judged)[1].replace("**Aim", f"**Aim, for `{judged}`,", 1),
        ]
    agree = (
        "`configs/volatility.yaml` has no model" if configured is None
        else f"`configs/volatility.yaml` sets `model.name: {configured}`"
        + (" (the same)." if configured == best else f" — **not** `{best}`: update it.")
    )  # fmt: skip
    return [f"**Recommended: `{best}`** — {why}. {agree}", "", _aim_line(pooled, best)[1]]


def markers(rv_source: str) -> tuple[str, str]:
    """The results markers of the page section of ``rv_source`` (1h: the main section)."""
    if rv_source == "1h":
        return START, END
    return f"<!-- results-{rv_source}:", f"<!-- end results-{rv_source} -->"


def render_results(summaries: list[dict], reports: list[Path], seeds: list[int], args) -> str:
    summary = summaries[0]
    cfg = summary["config"]
    bt, tr, ft = cfg["backtest"], cfg["train"], cfg["features"]
    first, last, n = common.period(summary)
    pooled = pool(summaries)
    best, why = recommend(pooled)
    main = ft["rv_source"] == "1h"
    out = [
        "",
        f"Daily BTC, ETH, LTC (Binance spot), one-day-ahead forecasts of annualised realized "
        f"volatility (RV from `{ft['rv_source']}` candles) for the days after **{first} .. {last}** "
        f"({'/'.join(map(str, n))} forecast origins per coin; days without a complete-enough RV are "
        f"not scored), walk-forward: {bt['fold_length']}-day folds, {bt['window']} window, every "
        f"model refit each fold on earlier days only; {len(seeds)} training seeds"
        + (
            "."
            if main
            else f"; daily series from {cfg['data']['start']} (the first 5-minute "
            "candle), so the first fold trains on under a year."
        ),
        "",
        "### Recommendation and the aim" if main else "### The rule and the aim on this target",
        "",
        *aim(pooled, best, why, main),
        "",
        "### Every model beside the baselines",
        "",
        "QLIKE: lower is better. skill = 1 − QLIKE / QLIKE(har) (> 0 beats har). DM p: two-sided "
        "Diebold–Mariano on QLIKE losses (a small p with negative skill means significantly "
        "worse). SPA p: Hansen's SPA test of the model against har (small: it beats har). 90% MCS: "
        "in the Model Confidence Set on QLIKE over all the coin's models of the seed's run (not "
        "significantly worse than the best), with its p-value. Bias ratio: mean realised / mean "
        "forecast variance (1 is unbiased). MZ R²: Mincer–Zarnowitz on variances. Vol-targeting: "
        f"position = min({bt['max_position']:g}, {bt['vol_target']:g} / forecast), "
        f"{bt['fee_bps']:g} bp fee + {bt['slippage_bps']:g} bp slippage per unit of change; its "
        "realised annual volatility and Sharpe. Neural rows: mean ± sd over the seeds (p-values: "
        "median [min, max]; MCS: in how many seeds); a single figure where every seed agrees "
        "(the baselines do not depend on the seed).",
        "",
        "| coin | model | n | QLIKE | skill vs har | DM p vs har | SPA p vs har | 90% MCS "
        "| bias ratio | MZ R² | RMSE vol | VT realised vol | VT Sharpe |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (c, m), v in pooled.items():
        out.append(
            f"| {c} | {m} | {seed_cell(v['n'], 0)} | {seed_cell(v['qlike'])} | "
            f"{seed_cell(v['skill_qlike'])} | {seed_p_cell(v['dm_pvalue_vs_har'])} | "
            f"{seed_p_cell(v['spa_p_vs_har'])} | {_mcs_cell(v)} | {seed_cell(v['bias_ratio'], 2)} | "
            f"{seed_cell(v['mz_r2'])} | {seed_cell(v['rmse_vol'])} | {seed_cell(v['vt_annual_vol'])} | "
            f"{seed_cell(v['vt_sharpe'], 2)} |"
        )
    flagged = sorted(
        {f"{r['model']} on {r['symbol']}" for s in summaries for r in s["results"]
         if r.get("leakage_suspect")}
    )  # fmt: skip
    sets = " ".join(f"--set {o}" for o in args.overrides)
    walls = [s.get("wall_seconds") for s in summaries]
    out += [
        "",
        "Leakage check: " + (", ".join(flagged) + " flagged." if flagged else "no model flagged."),
        "",
        "### How these numbers were made",
        "",
        f"- Command: `make compare-vol` (`{COMMAND} --seeds {','.join(map(str, seeds))}"
        + ("" if main else f" --config {common.shown(args.config)}")
        + (f" {sets}" if sets else "")
        + f"`), config `{common.shown(args.config)}`, report folders "
        f"`{common.shown(reports[0].parent)}/seed-N`.",
        f"- Target `{ft['target']}` from `{ft['rv_source']}` candles (days with fewer than "
        f"{ft['rv_min_hours']}/24 of their returns dropped), lookback {ft['lookback']} days, "
        f"horizon {ft['horizon']}, `rv_cross: {ft.get('rv_cross')}`; scalers fit on each fold's "
        "training rows only. `vol_combo` / `vol_select` members: "
        + ", ".join(f"`{m}`" for m in cfg["model"].get("members", []))
        + f" ({cfg['model'].get('combo_weights')} weights).",
        f"- Neural models: up to {tr['epochs']} epochs, early stopping (patience "
        f"{tr['patience']}) on the last {bt['val_fraction']:.0%} of each fold's training days, "
        f"seeds {', '.join(map(str, seeds))}, CPU, {tr['loss']} loss on log RV.",
        f"- Run {summary['created']}"
        + (f"; {', '.join(f'{w:.0f}' for w in walls if w)} s per seed" if all(walls) else "")
        + f"; torch {summary['versions'].get('torch')}.",
        "",
    ]
    return "\n".join(out)


def _markers(page: str, start_mark: str = START, end_mark: str = END) -> tuple[int, int]:
    start, end = page.find(start_mark), page.find(end_mark)
    if start < 0 or end < start:
        raise SystemExit(f"error: the page lacks the {start_mark} ... {end_mark} markers")
    return start, end


def splice(page: str, body: str, start_mark: str = START, end_mark: str = END) -> str:
    """``page`` with the text between the results markers replaced by ``body``."""
    start, end = _markers(page, start_mark, end_mark)
    return page[: page.index("\n", start) + 1] + body + page[end:]


def run(args: argparse.Namespace) -> int:
    """One backtest per seed (or its report), spliced into the results section of ``--out`` that
    belongs to the config's ``features.rv_source``."""
    seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    if len(seeds) < 3:
        print("error: --seeds needs at least 3 seeds (a single seed is noise)", file=sys.stderr)
        return 2
    marks = markers(common.load(args).features.rv_source)
    _markers(args.out.read_text(encoding="utf-8"), *marks)  # before minutes of backtest
    runs = [run_or_reuse(args, seed) for seed in seeds]
    body = render_results([s for s, _ in runs], [r for _, r in runs], seeds, args)
    out = args.out
    out.write_text(splice(out.read_text(encoding="utf-8"), body, *marks), "utf-8")
    print(f"wrote {out}")
    return 0
