"""``compare.py price``: our walk-forward results next to published figures, over several seeds.

Runs (or, with ``--reuse``, reads) the backtest of ``configs/compare.yaml`` once per training
seed -- daily BTC, ETH and LTC; lstm, gru, performer_bilstm and the naive baselines -- and writes
a Markdown page that puts the RMSE/MAPE published by Seabe et al. (2023) beside ours (mean and
spread over the seeds) and beside persistence on OUR test period. A single seed's Sharpe moved
from +0.22 to -0.41 when only the order of random draws changed, so neural models are reported
over >= 3 seeds. Every number of ours comes from the reports' ``summary.json``; the published ones
are the citations below. Nothing is typed in by hand.

The page records a training fingerprint (``cryptocast.evaluate.fingerprint``), the config hash and
the commit; ``tests/test_compare.py`` checks that the committed page still matches the code.

The periods differ: the paper has its own data range and train/test split; ours is the last year
of the reference candles, forecast one day ahead by models retrained every quarter on all earlier
days. Read the table as "the scale of errors on daily prices", not as a ranking.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from scripts.comparison import common
from scripts.comparison.common import REPO, fmt_p, shown

CONFIG = "compare.yaml"
HELP = "price forecasts over >= 3 seeds next to published figures -> docs/comparison.md"
COMMAND = "python scripts/compare.py price"

REFERENCE = (
    "P. L. Seabe, C. R. B. Moutsinga, E. Pindza (2023). Forecasting Cryptocurrency Prices Using "
    "LSTM, GRU, and Bi-Directional LSTM: A Deep Learning Approach. *Fractal and Fractional* "
    "7(2):203. https://doi.org/10.3390/fractalfract7020203"
)
# (coin, model in the paper, RMSE in USD, MAPE in %): daily closes, as published (citations).
PUBLISHED = [
    ("BTC", "LSTM", 1031.34, 3.94),
    ("BTC", "BiLSTM", 1029.36, 3.56),
    ("BTC", "GRU", 1274.17, 5.72),
    ("ETH", "BiLSTM", 83.95, 12.43),
    ("LTC", "BiLSTM", 8.02, 4.11),
]
# Our closest model. The paper's BiLSTM is a plain bidirectional LSTM; ours adds Performer
# attention.
OURS = {"LSTM": "lstm", "GRU": "gru", "BiLSTM": "performer_bilstm"}
SPREAD = (
    "rmse",
    "mape",
    "skill_rmse",
    "sharpe",
    "directional_accuracy",
    "dm_pvalue_vs_persistence",
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", default="0,1,2", help="training seeds, comma separated (>= 3)")
    p.add_argument("--update-docs", action="store_true", help="also write docs/comparison.md")


def run_or_reuse(args: argparse.Namespace, seed: int) -> tuple[dict, Path]:
    """One seed's backtest summary (run now, or read back when ``--reuse`` and the hash match)."""
    cfg = common.load(args)
    cfg.train.seed = seed
    report = common.report_root(args, cfg) / f"seed-{seed}"
    if args.reuse and (report / "summary.json").is_file():
        summary = common.reused(report, cfg)
        if summary is not None:
            print(f"reusing {report} (config {cfg.hash()})")
            return summary, report
        print(f"{report} has another config; running again")
    results, wall = common.backtest(cfg, args.data_dir, f"seed {seed}: ")
    summary = common.write(report, cfg, results, wall)
    print(f"backtest done in {wall} s; report {report}")
    return summary, report


def _f(v, digits: int = 2) -> str:
    """A figure with thousands separators (prices in USD)."""
    return "–" if v is None else f"{v:,.{digits}f}"


def _features_text(ft: dict) -> str:
    parts = ["the default indicator set" if ft["indicators"] is None else
             f"{len(ft['indicators'])} indicator(s)"]  # fmt: skip
    for key, text in (("log_returns", "log returns"), ("range_features", "candle range"),
                      ("calendar", "calendar")):  # fmt: skip
        if ft[key]:
            parts.append(text)
    return ", ".join(parts)


def _persistence_sentence(recs: dict) -> str:
    """Persistence's MAPE on our period beside the published MAPEs of the same coin."""
    parts = []
    for coin in dict.fromkeys(c for c, *_ in PUBLISHED):
        pers = recs.get((coin, "persistence"))
        if pers is None or pers.get("mape") is None:
            continue
        paper = [m for c, _, _, m in PUBLISHED if c == coin]
        rel = "below" if pers["mape"] < min(paper) else "not below"
        parts.append(
            f"{coin} {pers['mape']:.2f} % ({rel} every published MAPE for {coin}: "
            + ", ".join(f"{m:.2f} %" for m in paper)
            + ")"
        )
    if not parts:
        return ""
    return "On our period (not theirs) tomorrow = today scores MAPE " + "; ".join(parts) + "."


def pool(summaries: list[dict]) -> dict[tuple[str, str], dict]:
    """Per (coin, model): every seed's value of each figure, and the mean record.

    Naive models do not depend on the seed (their values repeat); neural ones do.
    """
    out: dict[tuple[str, str], dict] = {}
    for summary in summaries:
        for r in summary["results"]:
            entry = out.setdefault(
                (common.coin(r), r["model"]), {"first": r, "values": {k: [] for k in SPREAD}}
            )
            for k in SPREAD:
                if r.get(k) is not None:
                    entry["values"][k].append(float(r[k]))
    for entry in out.values():
        vals = entry["values"]
        entry["mean"] = {**entry["first"], **{k: statistics.fmean(v) for k, v in vals.items() if v}}
        entry["varies"] = any(len(set(v)) > 1 for v in vals.values())
    return out


def _spread(entry: dict, key: str, digits: int = 2, ranged: bool = False) -> str:
    """``mean ± sd`` over seeds (``[min, max]`` too when ``ranged``); one value if it never varies."""
    vals = entry["values"][key]
    if not vals:
        return "–"
    if len(set(vals)) == 1:
        return _f(vals[0], digits)
    sd = statistics.stdev(vals)
    text = f"{_f(statistics.fmean(vals), digits)} ± {_f(sd, digits)}"
    if ranged:
        text += f" [{_f(min(vals), digits)}, {_f(max(vals), digits)}]"
    return text


def _p_range(entry: dict) -> str:
    vals = entry["values"]["dm_pvalue_vs_persistence"]
    if not vals:
        return "–"
    if len(set(vals)) == 1:
        return fmt_p(vals[0])
    low = sum(v < 0.05 for v in vals)
    return (
        f"{fmt_p(statistics.median(vals))} [{fmt_p(min(vals))}, {fmt_p(max(vals))}]; "
        f"{low}/{len(vals)} < 0.05"
    )


def _finding(pooled: dict) -> str:
    beats = [
        f"{c} {m}" for (c, m), e in pooled.items()
        if e["varies"] and all(v > 0 for v in e["values"]["skill_rmse"])
        and all(p < 0.05 for p in e["values"]["dm_pvalue_vs_persistence"])
    ]  # fmt: skip
    if beats:
        return f"beats persistence significantly in every seed: {', '.join(beats)}."
    if all(
        statistics.fmean(e["values"]["skill_rmse"]) <= 0.005
        for e in pooled.values()
        if e["varies"] and e["values"]["skill_rmse"]
    ):
        return (
            "no neural model beats persistence significantly in every seed; "
            "their mean skill is at or below zero."
        )
    return "no neural model beats persistence significantly in every seed."


def render(summaries: list[dict], reports: list[Path], meta: dict) -> str:
    """The Markdown page, from the seeds' backtest summaries and the run's metadata."""
    pooled = pool(summaries)
    recs = {k: v["mean"] for k, v in pooled.items()}
    summary = summaries[0]
    seeds = meta["seeds"]
    cfg = summary["config"]
    bt, tr, ft = cfg["backtest"], cfg["train"], cfg["features"]
    first, last, n = common.period(summary)
    k = bt["retrain_every"]
    every = "fold" if k == 1 else f"{k} folds"
    stamp = json.dumps(
        {"config_hash": meta["config_hash"], "overrides": meta.get("overrides", []),
         "seeds": seeds, "commit": meta["commit"], "cryptocast": meta["cryptocast"],
         "fingerprint": meta["fingerprint"]},
        sort_keys=True,
    )  # fmt: skip
    out = [
        "# Our backtest next to published figures",
        "",
        f"<!-- generated by {COMMAND.removeprefix('python ')} (make compare UPDATE_DOCS=1); "
        "do not edit by hand -->",
        f"<!-- compare-meta: {stamp} -->",
        "",
        f"Published: {REFERENCE}",
        "",
        "**The periods differ.** The paper's figures come from its own data range and train/test "
        "split. Ours are one-day-ahead forecasts on the test period "
        f"**{first} .. {last}** ({'/'.join(map(str, n))} forecast days per coin, Binance spot daily "
        "closes), "
        f"walk-forward: {bt['fold_length']}-day folds, {bt['window']} training window, every model "
        f"retrained each {every} "
        "on all earlier days only. Price-level RMSE and MAPE depend on the price level of the "
        "period, so compare each model with persistence (tomorrow = today) on the same days, "
        "not across the two sources.",
        "",
        f"**Seeds.** Every neural model was trained with {len(seeds)} seeds "
        f"(`train.seed` = {', '.join(map(str, seeds))}); its figures are the mean ± standard "
        "deviation over the seeds, [min, max] where shown. A single seed is not a result: "
        "reordering the random draws alone moved one model's Sharpe from +0.22 to −0.41. "
        "Persistence and drift do not depend on the seed.",
        "",
        "| coin | model (paper) | paper RMSE | paper MAPE % | our model | our RMSE | our MAPE % "
        "| persistence RMSE (ours) | persistence MAPE % (ours) | our skill vs persistence |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for coin, model, rmse, mape in PUBLISHED:
        ours = pooled.get((coin, OURS[model]))
        pers = recs.get((coin, "persistence"), {})
        if ours is None:
            continue
        out.append(
            f"| {coin} | {model} | {_f(rmse)} | {_f(mape)} | {OURS[model]} | "
            f"{_spread(ours, 'rmse')} | {_spread(ours, 'mape')} | {_f(pers.get('rmse'))} | "
            f"{_f(pers.get('mape'))} | {_spread(ours, 'skill_rmse', 3)} |"
        )
    sentence = _persistence_sentence(recs)
    out += ["", sentence] if sentence else []
    out += [
        "",
        "**Finding:** " + _finding(pooled),
        "",
        "The paper's BiLSTM is a plain bidirectional LSTM; the closest model we have is "
        "`performer_bilstm` (Performer attention with BiLSTM feed-forward blocks).",
        "",
        "## All our results on this period",
        "",
        "skill = 1 − RMSE / RMSE(persistence) (> 0 beats persistence); DM p = Diebold–Mariano "
        "p-value against persistence (squared loss, HLN-corrected; small p with negative skill "
        "means significantly worse), median [min, max] over seeds and how many seeds fall below "
        "0.05; Sharpe of the long/flat strategy on the forecast's sign, "
        f"after {bt['fee_bps']:g} bp fee + {bt['slippage_bps']:g} bp slippage per trade "
        "(buy-and-hold Sharpe beside it).",
        "",
        "| coin | model | seeds | n | RMSE | MAPE % | skill | DM p | directional acc. | Sharpe "
        "| buy-and-hold Sharpe |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (coin, model), e in pooled.items():
        r = e["first"]
        out.append(
            f"| {coin} | {model} | {len(e['values']['rmse']) if e['varies'] else '–'} | {r['n']} | "
            f"{_spread(e, 'rmse')} | {_spread(e, 'mape')} | {_spread(e, 'skill_rmse', 3, True)} | "
            f"{_p_range(e)} | {_spread(e, 'directional_accuracy', 3)} | "
            f"{_spread(e, 'sharpe', 2, True)} | {_f(r.get('bh_sharpe'))} |"
        )
    walls = [s.get("wall_seconds") for s in summaries if s.get("wall_seconds") is not None]
    out += [
        "",
        "## How these numbers were made",
        "",
        f"- Command: `make compare UPDATE_DOCS=1` (`{COMMAND} "
        f"--seeds {','.join(map(str, seeds))}"
        + "".join(f" --set {o}" for o in meta.get("overrides", []))
        + " --update-docs`), config `configs/compare.yaml` "
        f"(hash `{meta['config_hash']}` before the seed is set), report folders "
        f"`{shown(reports[0].parent)}/seed-N`.",
        f"- Code: commit `{meta['commit']}`, cryptocast {meta['cryptocast']}, torch "
        f"{summary['versions'].get('torch')}. `tests/test_compare.py` recomputes the training "
        "fingerprint recorded above (the first forecasts of each neural model after a short "
        "seeded training on synthetic candles, through the same walk-forward code) and fails when "
        "the code no longer produces it: then rerun `make compare UPDATE_DOCS=1`.",
        f"- Features: {_features_text(ft)}; lookback {ft['lookback']} days, "
        f"horizon {ft['horizon']}, target {ft['target']}; scalers fit on each fold's training "
        "rows only.",
        f"- Training: up to {tr['epochs']} epochs, early stopping (patience {tr['patience']}) on "
        f"the last {bt['val_fraction']:.0%} of each fold's training days, CPU.",
        f"- Runs {summaries[0]['created']} .. {summaries[-1]['created']}"
        + (
            f", {sum(walls):.0f} s in all ({', '.join(f'{w:.0f}' for w in walls)} s per seed)"
            if walls
            else ""
        )  # fmt: skip
        + ".",
        "",
    ]
    return "\n".join(out)


def parse_meta(page: str) -> dict | None:
    """The ``compare-meta`` record of a rendered page (None if absent)."""
    marker = "<!-- compare-meta: "
    if marker not in page:
        return None
    return json.loads(page.split(marker, 1)[1].split(" -->", 1)[0])


def run(args: argparse.Namespace) -> int:
    """Every seed's backtest, the page in the report folder (and docs/comparison.md)."""
    from cryptocast import __version__
    from cryptocast.evaluate.fingerprint import training_fingerprint

    seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    if len(seeds) < 3:
        print("error: --seeds needs at least 3 seeds (a single seed is noise)", file=sys.stderr)
        return 2
    cfg = common.load(args)
    t0 = time.perf_counter()
    runs = [run_or_reuse(args, seed) for seed in seeds]
    meta = {
        "overrides": list(args.overrides),
        "config_hash": cfg.hash(),
        "seeds": seeds,
        "commit": common.git_commit(),
        "cryptocast": __version__,
        "fingerprint": training_fingerprint(cfg),
    }
    page = render([s for s, _ in runs], [r for _, r in runs], meta)
    out = common.report_root(args, cfg) / "comparison.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    print(f"wrote {out} ({len(seeds)} seeds, {time.perf_counter() - t0:.0f} s)")
    if args.update_docs:
        doc = REPO / "docs" / "comparison.md"
        doc.write_text(page, encoding="utf-8")
        print(f"updated {doc}")
    else:
        print("docs/comparison.md left as it is; make compare UPDATE_DOCS=1 rewrites it")
    return 0
