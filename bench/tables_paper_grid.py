"""The paper grid's section of ``bench/RESULTS.md`` (and the README's grid tables), from
``paper_grid.json`` alone.

Three tables: each plan's wall time over the whole grid and its speed-up; the training seconds and
refits of each (timeframe, model) per plan; every trained job's skill vs persistence in each plan
beside the per-series plan's, with the DM p-value of the two forecasts and, when several seeds ran,
the seed spread. A verdict line counts the jobs at or above the per-series skill.
"""

from __future__ import annotations

import statistics
from typing import Any

from bench.tables_common import by_figure, command, duration, provenance

PLAN_TEXT = {
    "pooled": "pooled + fast (`configs/grid_pooled.yaml`)",
    "fast": "per-series, fast (`configs/grid.yaml` as shipped)",
    "cold": "per-series, cold (every refit from scratch)",
}
ALPHA = 0.05


def _num(v: Any, fmt: str = "+.4f") -> str:
    return "–" if v is None else format(v, fmt)


def plan_table(records: list[dict]) -> list[str]:
    """Wall time per plan (every seed) and its speed-up (seed 0) over the per-series fast plan."""
    speed = {
        r["params"]["plan"]: r["value"] for r in by_figure(records, "grid speed-up", over="fast")
    }
    seeds = sorted({r["params"]["seed"] for r in by_figure(records, "grid seconds")})
    label = "wall time" if len(seeds) == 1 else f"wall time (seed {' / '.join(map(str, seeds))})"
    lines = [f"| plan | {label} | over per-series fast | jobs | folds |",
             "| --- | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for r in by_figure(records, "grid seconds", seed=0):
        p = r["params"]
        s = speed.get(p["plan"], 1.0 if p["plan"] == "fast" else None)
        walls = [duration(v, 2) for v in _seeds(records, "grid seconds", plan=p["plan"])]
        lines.append(f"| {PLAN_TEXT.get(p['plan'], p['plan'])} | {' / '.join(walls)} | "
                     f"{'–' if s is None else f'{s:.2f}×'} | {p['jobs']} | {p['folds']} |")  # fmt: skip
    return lines


def cost_table(records: list[dict]) -> list[str]:
    """Training seconds (refits) per timeframe and model, one column per plan."""
    plans = list(dict.fromkeys(r["params"]["plan"] for r in by_figure(records, "training seconds")))
    cells: dict[tuple, dict[str, str]] = {}
    for r in by_figure(records, "training seconds"):
        p = r["params"]
        cells.setdefault((p["timeframe"], p["model"]), {})[p["plan"]] = (
            f"{duration(r['value'], 2)} ({p['refits']})"
        )
    lines = ["| timeframe | model | " + " | ".join(plans) + " |",
             "| --- | --- |" + " ---: |" * len(plans)]  # fmt: skip
    for (tf, model), row in sorted(cells.items()):
        lines.append(f"| {tf} | {model} | " + " | ".join(row.get(p, "–") for p in plans) + " |")
    return lines


def _seeds(records: list[dict], figure: str, **match: Any) -> list[float]:
    """A job's values of ``figure`` over seeds, in seed order."""
    rows = sorted(by_figure(records, figure, **match), key=lambda r: r["params"].get("seed", 0))
    return [r["value"] for r in rows if r["value"] is not None]


def skill_rows(records: list[dict], plan: str = "pooled") -> list[dict]:
    """Per job: the per-series fast plan's and ``plan``'s skill over seeds (mean, sd), their DM
    p-values vs persistence over seeds, and the DM p of ``plan`` against per-series per seed."""
    out = []
    for r in by_figure(records, "skill vs fast", plan=plan, seed=0):
        p = r["params"]
        key = {k: p[k] for k in ("symbol", "timeframe", "model")}
        fast, mine = (
            _seeds(records, "skill_rmse", plan="fast", **key),
            _seeds(records, "skill_rmse", plan=plan, **key),
        )
        out.append({**key, "fast": fast, "plan": mine,
                    "fast_p": _seeds(records, "dm p vs persistence", plan="fast", **key),
                    "plan_p": _seeds(records, "dm p vs persistence", plan=plan, **key),
                    "delta": statistics.fmean(mine) - statistics.fmean(fast),
                    "dm_p": [v["params"]["dm_p"] for v in sorted(
                        by_figure(records, "skill vs fast", plan=plan, **key),
                        key=lambda v: v["params"]["seed"])],
                    "sd": statistics.stdev(fast) if len(fast) > 1 else None})  # fmt: skip
    return out


def _holds(row: dict) -> bool:
    """The aim for one job: pooled skill at or above per-series, or below by at most 2 sd of the
    per-series seeds."""
    return row["delta"] >= 0 or (row["sd"] is not None and -row["delta"] <= 2 * row["sd"])


def verdict(rows: list[dict]) -> str:
    """How many jobs the plan holds or beats the per-series skill on (seed means), how many differ
    significantly (DM p < 0.05 on every seed) either way, and, with several seeds, how many are
    within 2 sd of the per-series seeds."""
    n = len(rows)
    at_or_above = sum(r["delta"] >= 0 for r in rows)
    worse = sum(r["delta"] < 0 and max(r["dm_p"]) < ALPHA for r in rows)
    better = sum(r["delta"] > 0 and max(r["dm_p"]) < ALPHA for r in rows)
    seeds = max(len(r["fast"]) for r in rows)
    every = " on every seed" if seeds > 1 else ""
    text = (f"pooled skill at or above per-series on {at_or_above} of {n} jobs"
            f"{f' (means over {seeds} seeds)' if seeds > 1 else ''}; significantly worse "
            f"(DM p < {ALPHA}{every}) on {worse}, significantly better on {better}")  # fmt: skip
    if any(r["sd"] for r in rows):
        short = [f"{r['symbol'].split('/')[0]} {r['timeframe']} {r['model']}" for r in rows
                 if not _holds(r)]  # fmt: skip
        held = n - len(short)
        aim = "met" if held == n else "not met"
        text += (f"; at or above per-series or within 2 sd of its seeds on {held} of {n} "
                 f"(the aim, every job: {aim})")  # fmt: skip
        if short:
            text += f", below on {', '.join(short)}"
    return text


def _cell(values: list[float], pvals: list[float]) -> str:
    """``-0.0036 (0.021)`` for one seed; ``-0.0036 ± 0.0012 (0.021–0.080)`` over several."""
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:+.4f} ({_num(pvals[0] if pvals else None, '.3f')})"
    ps = f"{min(pvals):.3f}–{max(pvals):.3f}" if pvals else "–"
    return f"{statistics.fmean(values):+.4f} ± {statistics.stdev(values):.4f} ({ps})"


def skill_table(rows: list[dict]) -> list[str]:
    lines = ["| symbol | tf | model | per-series skill (DM p) | pooled skill (DM p) | "
             "pooled − per-series | DM p pooled vs per-series |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for r in rows:
        lines.append(
            f"| {r['symbol']} | {r['timeframe']} | {r['model']} | {_cell(r['fast'], r['fast_p'])} "
            f"| {_cell(r['plan'], r['plan_p'])} | {_num(r['delta'])} | "
            f"{', '.join(format(p, '.3f') for p in r['dm_p'])} |"
        )
    return lines


def paper_grid_section(doc: dict, quick: bool) -> list[str]:
    recs = doc["records"]
    if not by_figure(recs, "grid seconds"):
        return []
    lines = ["### paper_grid", "", f"{command('paper_grid', quick)} — {provenance(doc)}", ""]
    lines += plan_table(recs) + [""]
    lines += ["Training seconds per timeframe and model (refits in brackets; a pooled refit "
              "trains one model on all three coins):", ""]  # fmt: skip
    lines += cost_table(recs) + [""]
    rows = skill_rows(recs)
    if rows:
        seeds = max(len(r["fast"]) for r in rows)
        over = f"mean ± sd over {seeds} seeds (`train.seed` 0..{seeds - 1}), the DM p range" if (
            seeds > 1) else "one seed, DM p"  # fmt: skip
        lines += [f"Skill vs persistence (RMSE of the close; {over} vs persistence in brackets) "
                  "and the pooled model against the per-series one on the same origins (DM p "
                  "per seed):", ""]  # fmt: skip
        lines += skill_table(rows) + ["", verdict(rows) + ".", ""]
    return lines


def _beats(records: list[dict], plan: str) -> str:
    """``12 of 24 jobs beat persistence (3 significantly), 2 significantly worse``: seed means,
    significant when DM p < 0.05 on every seed."""
    keys = {(r["params"]["symbol"], r["params"]["timeframe"], r["params"]["model"])
            for r in by_figure(records, "skill_rmse", plan=plan)}  # fmt: skip
    up = sig_up = sig_down = 0
    for sym, tf, model in keys:
        key = {"plan": plan, "symbol": sym, "timeframe": tf, "model": model}
        skill = _seeds(records, "skill_rmse", **key)
        pvals = _seeds(records, "dm p vs persistence", **key)
        if not skill:
            continue
        mean, sig = statistics.fmean(skill), bool(pvals) and max(pvals) < ALPHA
        up += mean > 0
        sig_up += mean > 0 and sig
        sig_down += mean < 0 and sig
    seeds = len({r["params"]["seed"] for r in by_figure(records, "skill_rmse", plan=plan)})
    how = f"mean over {seeds} seeds; " if seeds > 1 else ""
    every = " on every seed" if seeds > 1 else ""
    return (f"{up} of {len(keys)} jobs beat persistence ({how}{sig_up} with DM p < {ALPHA}"
            f"{every}); {sig_down} significantly worse")  # fmt: skip


def readme_block(doc: dict) -> str:
    """The README's grid block: each plan's wall time, and how its skill compares, in short."""
    recs = doc["records"]
    if not by_figure(recs, "grid seconds"):
        return ""
    plans = [r["params"]["plan"] for r in by_figure(recs, "grid seconds", seed=0)]
    lines = [f"Measured end to end by `make bench-paper-grid` ({provenance(doc)}; "
             "[bench/results/paper_grid.json](bench/results/paper_grid.json), every job in "
             "[bench/RESULTS.md](bench/RESULTS.md#paper_grid)), `--workers 2` on the 2-core "
             "machine:", ""]  # fmt: skip
    lines += plan_table(recs) + [""]
    for plan in plans:
        lines.append(f"- {PLAN_TEXT.get(plan, plan)}: {_beats(recs, plan)}.")
    rows = skill_rows(recs)
    if rows:
        lines.append(
            f"- {verdict(rows)} (DM tests of the two plans' forecasts on the same origins, "
            "seed by seed)."
        )
    return "\n".join(lines) + "\n"
