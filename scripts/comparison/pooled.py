"""``compare.py pooled``: pooled ("global") models beside per-series ones -> docs/global.md.

Each table is one config (``configs/compare_global*.yaml``, ``backtest.pooled: true``): every neural
model runs per series and as ``<model>@pooled`` in the same backtest, beside the target's baseline.
Each table runs in two variants, once per training seed (>= 3): ``alone`` (``train.universe=[]``:
the pool is the three evaluated coins) and ``universe`` (the config's ten training-only pairs join
the pool). Reports go to ``<report_dir>/<variant>/seed-N``. A per-series job's result does not
depend on the pooled-only settings, so both variants share a job store (``<report_dir>/.jobs``,
``cryptocast.evaluate.jobstore``): the second variant reruns only the pooled jobs.

The results section of the page (between its ``<!-- results: ... -->`` and ``<!-- end results -->``
markers) is rewritten from the reports' ``summary.json`` alone: per table, each coin and model's
per-series and pooled skill over the seeds, the pooled model's DM p against the baseline and the
verdict of the rule stated on the page; what the plan left out is named there as not run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

from scripts.comparison import common
from scripts.comparison.common import REPO, fmt, seed_cell, seed_p_cell

CONFIG = "compare_global.yaml"
HELP = "pooled vs per-series models, without and with training-only pairs -> docs/global.md"
COMMAND = "python scripts/compare.py pooled"
START = "<!-- results:"
END = "<!-- end results -->"
POOLED = "@pooled"
VARIANTS = ("alone", "universe")


@dataclass(frozen=True)
class Table:
    """One (timeframe, target) table: its config and the records' figures it is judged on."""

    name: str
    title: str
    config: str
    baseline: str
    skill: str  # 1 - loss / loss(baseline): higher is better, the verdict's figure
    pvalue: str  # DM p-value against the baseline
    loss: str  # the loss the skill is of
    loss_label: str
    digits: int = 4
    extra: tuple[str, str] | None = None  # (record key, label): a second loss, shown as is
    skill_digits: int = 3  # hourly skills are an order of magnitude smaller


TABLES = {
    t.name: t
    for t in (
        Table("1d-price", "Daily price (log-return point forecasts)", "compare_global.yaml",
              "persistence", "skill_rmse", "dm_pvalue_vs_persistence", "rmse_ret", "RMSE"),
        Table("1d-quantile", "Daily quantiles (CRPS, cqr-calibrated)", "compare_global_prob.yaml",
              "rw_ewma", "crps_skill", "dm_pvalue_crps_vs_rw_ewma", "crps", "CRPS", 5,
              ("pinball", "pinball loss (mean over the quantile levels)")),
        Table("1d-volatility", "Daily realized volatility (QLIKE)", "compare_global_vol.yaml",
              "har", "skill_qlike", "dm_pvalue_vs_har", "qlike", "QLIKE", 3),
        Table("1h-price", "Hourly price (log-return point forecasts, fast hourly plan)",
              "compare_global_1h.yaml", "persistence", "skill_rmse", "dm_pvalue_vs_persistence",
              "rmse_ret", "RMSE", 5, skill_digits=4),
    )
}  # fmt: skip
# What `make compare-global` runs (the 2-core budget); the page names the rest as not run.
LEFT_OUT = (
    "`performer_bilstm` and `transformer` in every table. Left out to keep the whole comparison "
    "near 45 minutes on the 2-core machine: with the ten pairs each hourly pooled fit trains on "
    "13 series of two years of hours."
)
DEFAULT_PLAN = "1d-price,1d-quantile,1d-volatility,1h-price:alone"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", default="0,1,2", help="training seeds, comma separated (>= 3)")
    p.add_argument(
        "--plan",
        default=DEFAULT_PLAN,
        help="tables to run, comma separated, each optionally :alone or :universe "
        f"(tables: {', '.join(TABLES)}; default {DEFAULT_PLAN}); --config is not read: "
        "each table has its own configs/compare_global*.yaml",
    )
    p.add_argument(
        "--out", type=Path, default=REPO / "docs" / "global.md", help="the page whose results "
        "section is rewritten",
    )  # fmt: skip


def parse_plan(text: str) -> list[tuple[str, str]]:
    """``1d-price,1h-price:alone`` -> [(table, variant), ...] in table order, then variant order."""
    wanted: set[tuple[str, str]] = set()
    for item in (x.strip() for x in text.split(",") if x.strip()):
        name, _, variant = item.partition(":")
        if name not in TABLES:
            raise SystemExit(f"error: --plan: unknown table {name!r}; known: {', '.join(TABLES)}")
        if variant and variant not in VARIANTS:
            raise SystemExit(f"error: --plan: {item!r}: the variant is alone or universe")
        wanted |= {(name, v) for v in ([variant] if variant else VARIANTS)}
    return [(t, v) for t in TABLES for v in VARIANTS if (t, v) in wanted]


def _args_for(args: argparse.Namespace, table: Table) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(args), "config": str(REPO / "configs" / table.config)})


def table_root(args: argparse.Namespace, table: Table) -> Path:
    """The table's report folder: ``--report``/<report_dir's name>, else its ``report_dir``."""
    cfg = common.load(_args_for(args, table))
    if args.report is not None:
        return args.report / Path(cfg.backtest.report_dir).name
    return REPO / cfg.backtest.report_dir


def run_or_reuse(args: argparse.Namespace, table: Table, variant: str, seed: int) -> dict:
    """One (table, variant, seed) backtest summary: run now (per-series jobs kept in the table's
    job store), or read back with ``--reuse`` when its config hash matches."""
    extra = ["train.universe=[]"] if variant == "alone" else []
    cfg = common.load(_args_for(args, table), *extra)
    cfg.train.seed = seed
    root = table_root(args, table)
    report = root / variant / f"seed-{seed}"
    if args.reuse and (report / "summary.json").is_file():
        summary = common.reused(report, cfg)
        if summary is not None:
            print(f"reusing {report} (config {cfg.hash()})")
            return summary
        print(f"{report} has another config; running again")
    label = f"{table.name} {variant} seed {seed}: "
    results, wall = common.backtest(cfg, args.data_dir, label, jobs_dir=root / ".jobs")
    summary = common.write(report, cfg, results, wall)
    print(f"{label}done in {wall} s; report {report}")
    return summary


def reports(args: argparse.Namespace, seeds: list[int]) -> dict[tuple[str, str], list[dict]]:
    """Every (table, variant) whose report exists for every seed, read back (no run)."""
    import json

    out = {}
    for t in TABLES.values():
        root = table_root(args, t)
        for v in VARIANTS:
            paths = [root / v / f"seed-{s}" / "summary.json" for s in seeds]
            if all(p.is_file() for p in paths):
                out[(t.name, v)] = [json.loads(p.read_text()) for p in paths]
    return out


# ---- rendering: from summaries alone ----------------------------------------------------------


def values(summaries: list[dict], key: str) -> dict[tuple[str, str], list[float]]:
    """Per (coin, model), in the order of the first run: every seed's value of ``key``."""
    out: dict[tuple[str, str], list[float]] = {}
    for summary in summaries:
        for r in summary["results"]:
            vals = out.setdefault((common.coin(r), r["model"]), [])
            if r.get(key) is not None:
                vals.append(float(r[key]))
    return out


def at_or_above(pooled: list[float], per_series: list[float]) -> bool | None:
    """The page's rule: the pooled mean skill >= the per-series mean skill minus the per-series
    standard deviation over seeds (None when either has fewer than two seeds)."""
    if len(pooled) < 2 or len(per_series) < 2:
        return None
    floor = statistics.fmean(per_series) - statistics.stdev(per_series)
    return statistics.fmean(pooled) >= floor


def _verdict(ok: bool | None) -> str:
    return "–" if ok is None else ("yes" if ok else "**no**")


def judge(
    table: Table, runs: dict[str, list[dict]]
) -> dict[str, dict[tuple[str, str], bool | None]]:
    """Per variant, per (coin, model): the rule's verdict for ``<model>@pooled`` vs ``<model>``."""
    present = [v for v in VARIANTS if v in runs]
    per = values(runs[present[0]], table.skill)
    out = {}
    for v in present:
        skill = values(runs[v], table.skill)
        out[v] = {
            (c, pm.removesuffix(POOLED)): at_or_above(
                vals, per.get((c, pm.removesuffix(POOLED)), [])
            )
            for (c, pm), vals in skill.items()
            if pm.endswith(POOLED)
        }
    return out


def aim_line(variant: str, verdicts: dict[tuple[str, str], bool | None]) -> str:
    """``alone: aim met — ...`` for one variant's verdicts."""
    met = bool(verdicts) and all(x is True for x in verdicts.values())
    misses = [f"{c} {m}" for (c, m), x in verdicts.items() if x is not True]
    return (
        f"**{variant}: aim {'met' if met else 'not met'}** — pooled at or above per-series on "
        f"{sum(x is True for x in verdicts.values())} of {len(verdicts)} coin × model rows"
        + (f"; below on {', '.join(misses)}" if misses else "")
    )


def render_table(table: Table, runs: dict[str, list[dict]]) -> list[str]:
    """One table's rows (per coin and neural model) and its met / not met lines."""
    present = [v for v in VARIANTS if v in runs]
    skill = {v: values(runs[v], table.skill) for v in present}
    pval = {v: values(runs[v], table.pvalue) for v in present}
    verdicts = judge(table, runs)
    head = "| coin | model | per-series skill | per-series DM p |"
    rule = "|---|---|---:|---:|"
    for v in present:
        head += f" @pooled {v} skill | DM p | at or above? |"
        rule += "---:|---:|:---:|"
    out = [head, rule]
    for c, m in verdicts[present[0]]:
        pm = m + POOLED
        d = table.skill_digits
        line = (
            f"| {c} | {m} | {seed_cell(skill[present[0]].get((c, m), []), d)} | "
            f"{seed_p_cell(pval[present[0]].get((c, m), []))} |"
        )
        for v in present:
            line += (
                f" {seed_cell(skill[v].get((c, pm), []), d)} | {seed_p_cell(pval[v].get((c, pm), []))} | "
                f"{_verdict(verdicts[v].get((c, m)))} |"
            )
        out.append(line)
    loss = values(runs[present[0]], table.loss)
    coins = list(dict.fromkeys(c for c, _ in verdicts[present[0]]))
    base = [f"{c} {fmt(loss[(c, table.baseline)][0], table.digits)}" for c in coins
            if loss.get((c, table.baseline))]  # fmt: skip
    out.append("")
    if base:
        out.append(f"`{table.baseline}` {table.loss_label}: {', '.join(base)}.")
    if len(present) > 1:
        names = [k for k in skill[present[0]] if not k[1].endswith(POOLED)]
        same = all(skill[v].get(k) == skill[present[0]][k] for v in present for k in names)
        out.append(
            "The per-series rows are identical in both variants' reports."
            if same
            else "**The per-series rows differ between the variants' reports** (shown: "
            f"`{present[0]}`)."
        )
    out.append("")
    out += [f"- {aim_line(v, verdicts[v])}." for v in present]
    return out + extra_table(table, runs)


def extra_table(table: Table, runs: dict[str, list[dict]]) -> list[str]:
    """The table's second loss (``Table.extra``), mean ± sd over seeds: lower is better."""
    if table.extra is None:
        return []
    key, label = table.extra
    present = [v for v in VARIANTS if v in runs]
    vals = {v: values(runs[v], key) for v in present}
    out = [
        "",
        f"{label[0].upper()}{label[1:]}, lower is better:",
        "",
        "| coin | model | per-series | " + " | ".join(f"@pooled {v}" for v in present) + " |",
        "|---|---|---:|" + "---:|" * len(present),
    ]
    for c, m in vals[present[0]]:
        if m.endswith(POOLED):
            continue
        pooled = [seed_cell(vals[v].get((c, m + POOLED), []), table.digits) for v in present]
        if m == table.baseline:
            pooled = ["(baseline)"] * len(present)
        out.append(
            f"| {c} | {m} | {seed_cell(vals[present[0]][(c, m)], table.digits)} | "
            + " | ".join(pooled)
            + " |"
        )
    return out


def cost_rows(table: Table, runs: dict[str, list[dict]]) -> list[str]:
    """Wall seconds per run, and each neural model's training seconds per series vs pooled."""
    out = []
    for v, summaries in runs.items():
        walls = [s.get("wall_seconds") for s in summaries]
        secs = values(summaries, "seconds")
        models = list(dict.fromkeys(m for _, m in secs if m.endswith(POOLED)))
        bits = []
        for pm in models:
            m = pm.removesuffix(POOLED)
            per = [statistics.fmean(secs[k]) for k in secs if k[1] == m and secs[k]]
            pooled = [statistics.fmean(secs[k]) for k in secs if k[1] == pm and secs[k]]
            if per and pooled:
                bits.append(f"{m} {sum(per):.0f} s per-series (3 jobs) vs {pooled[0]:.0f} s pooled")
        out.append(
            f"| {table.name} | {v} | {', '.join(fmt(w, 0) for w in walls)} | "
            f"{'; '.join(bits) or '–'} |"
        )
    return out


def render_results(found: dict[tuple[str, str], list[dict]], seeds: list[int], plan) -> str:
    """The results section from every (table, variant)'s seed summaries."""
    out = [""]
    any_summary = next(iter(found.values()))[0]
    first, last, _ = common.period(any_summary)
    out += [
        f"Reference year **{first} .. {last}** (the test origins), BTC, ETH and LTC, training "
        f"seeds {', '.join(map(str, seeds))}. Columns: skill = 1 − loss / loss(baseline) on the "
        "same origins (> 0 beats the baseline), mean ± sd over the seeds; DM p = two-sided "
        "Diebold–Mariano p-value against the baseline, median [min, max] over the seeds (a small "
        "p with negative skill means significantly worse); *at or above?* = the rule above. "
        "`alone`: the pool is the three evaluated coins; `universe`: plus the ten training-only "
        "pairs. The per-series rows are the same jobs in both variants.",
        "",
    ]
    short = []
    for t in TABLES.values():
        runs = {v: found[(t.name, v)] for v in VARIANTS if (t.name, v) in found}
        missing = [v for v in VARIANTS if v not in runs]
        out += [f"### {t.title}: skill vs `{t.baseline}`", ""]
        if not runs:
            out += [f"Not run (`{t.name}`).", ""]
            short.append(f"- {t.title}: not run.")
            continue
        cfg = next(iter(runs.values()))[0]["config"]
        out += [
            f"Config `configs/{t.config}` ({cfg['backtest']['timeframes'][0]}, "
            f"{t.loss_label}); models {', '.join(cfg['backtest']['models'])}."
            + (f" Not run: {', '.join(missing)}." if missing else ""),
            "",
            *render_table(t, runs),
            "",
        ]
        verdicts = judge(t, runs)
        short.append(
            f"- {t.title}: "
            + "; ".join(aim_line(v, verdicts[v]) for v in verdicts)
            + (f"; `{'`, `'.join(missing)}` not run" if missing else "")
            + "."
        )
    out[3:3] = ["#### In short", "", *short, ""]
    out += [
        "### Cost",
        "",
        "Wall seconds of each seed's backtest (2 workers on the 2-core machine; the `universe` "
        "run reuses the per-series jobs of the `alone` run from the job store, so its wall time "
        "is mostly its pooled jobs) and the training seconds of one job, mean over seeds: "
        "the three per-series jobs of a model summed vs its one pooled job. Both depend on "
        "what else the machine ran at the time (other work shared its two cores during these "
        "runs), so compare within a row rather than across seeds.",
        "",
        "| table | variant | wall s per seed | training s |",
        "|---|---|---|---|",
    ]
    for t in TABLES.values():
        out += cost_rows(t, {v: found[(t.name, v)] for v in VARIANTS if (t.name, v) in found})
    not_run = [f"{t}:{v}" for t in TABLES for v in VARIANTS if (t, v) not in found]
    made = sorted({s["created"] for ss in found.values() for s in ss})
    out += [
        "",
        "### How these numbers were made",
        "",
        f"- Command: `make compare-global` (`{COMMAND} --seeds {','.join(map(str, seeds))} "
        f"--plan {plan}`); add `--reuse` to re-render from the reports.",
        "- Reports: `reports/compare_global*/<variant>/seed-N/summary.json`; "
        "torch "
        + str(any_summary["versions"].get("torch"))
        + f", CPU; runs {made[0]} .. {made[-1]}.",
        "- Not run: " + (", ".join(f"`{x}`" for x in not_run) or "no table") + f"; {LEFT_OUT}",
        "",
    ]
    return "\n".join(out)


def splice(page: str, body: str) -> str:
    """``page`` with the text between the results markers replaced by ``body``."""
    start, end = page.find(START), page.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"error: the page lacks the {START} ... {END} markers")
    return page[: page.index("\n", start) + 1] + body + page[end:]


def run(args: argparse.Namespace) -> int:
    """Every planned (table, variant, seed) backtest (or its report), then the page section from
    every complete (table, variant) on disk."""
    seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    if len(seeds) < 3:
        print("error: --seeds needs at least 3 seeds (a single seed is noise)", file=sys.stderr)
        return 2
    plan = parse_plan(args.plan)
    splice(args.out.read_text(encoding="utf-8"), "")  # the markers, before minutes of backtest
    for name, variant in plan:  # table by table: a stopped run leaves whole tables behind
        for seed in seeds:
            run_or_reuse(args, TABLES[name], variant, seed)
    found = {k: v for k, v in reports(args, seeds).items() if k in plan}
    if not found:
        print("error: no complete (table, variant) to render", file=sys.stderr)
        return 1
    body = render_results(found, seeds, args.plan)
    args.out.write_text(splice(args.out.read_text(encoding="utf-8"), body), "utf-8")
    print(f"wrote {args.out}")
    return 0
