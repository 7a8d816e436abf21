"""The walk-forward grid's section of ``bench/RESULTS.md``, from ``grid.json`` alone.

Three tables: wall time of each pass and its speed-up over cold; seconds per refit by timeframe
and model (a job's first refit apart from its later ones, which warm start shortens) with what a
whole 12-fold job would cost at those rates; and every trained job's skill vs persistence in each
pass beside the cold passes' seed spread.
"""

from __future__ import annotations

import statistics
from typing import Any

from bench.tables_common import by_figure, command, duration, fmt, provenance

FOLDS_PER_YEAR = 12  # the grid's 30-day folds over 2022-07-01 .. 2023-06-30
COINS = 3  # BTC, ETH, LTC
NEURAL = ("lstm", "gru", "transformer", "performer_bilstm")
PASS_TEXT = {
    "cold": "cold (every refit from scratch)",
    "warm": "warm (`backtest.warm_start`)",
    "fast": "fast (warm + `train.window_stride` on hourly jobs)",
}


def _fmt(value: Any, digits: int = 3) -> str:
    return fmt(value) if not isinstance(value, float) else f"{value:.{digits}g}"


def _passes(records: list[dict]) -> list[str]:
    return list(dict.fromkeys(r["params"]["pass"] for r in by_figure(records, "grid seconds")))


def pass_table(records: list[dict]) -> list[str]:
    speed = {r["params"]["pass"]: r["value"] for r in by_figure(records, "grid speed-up")}
    lines = [
        "| pass | wall seconds | speed-up over cold | folds walked |",
        "| --- | ---: | ---: | ---: |",
    ]
    for r in by_figure(records, "grid seconds"):
        p = r["params"]
        s = speed.get(p["pass"])
        lines.append(f"| {p['pass']} | {_fmt(r['value'], 4)} | "
                     f"{'–' if s is None else f'{s:.2f}×'} | {p.get('folds', '–')} |")  # fmt: skip
    return lines


def refit_table(records: list[dict]) -> list[str]:
    """Seconds per refit (seed 0) and the implied cost of one 12-fold job per pass."""
    cells: dict[tuple[str, str], dict[str, float]] = {}
    for r in by_figure(records, "seconds per refit"):
        p = r["params"]
        if p.get("seed", 0) != 0 or p["model"] in ("persistence", "drift"):
            continue
        cells.setdefault((p["timeframe"], p["model"]), {})[f"{p['pass']} {p['refit']}"] = r["value"]
    passes = _passes(records)
    cols = [f"{ps} {w}" for ps in passes for w in ("first", "later")]
    head = "| timeframe | model | " + " | ".join(cols) + " | "
    head += " | ".join(f"12-fold job, {ps}" for ps in passes) + " |"
    lines = [head, "| --- | --- |" + " ---: |" * (len(cols) + len(passes))]
    for (tf, model), row in cells.items():
        vals = [_fmt(row.get(c)) for c in cols]
        jobs = []
        for ps in passes:
            first, later = row.get(f"{ps} first"), row.get(f"{ps} later")
            jobs.append(None if first is None or later is None
                        else first + (FOLDS_PER_YEAR - 1) * later)  # fmt: skip
        lines.append(f"| {tf} | {model} | " + " | ".join(vals) + " | "
                     + " | ".join(duration(j) for j in jobs) + " |")  # fmt: skip
    return lines


def job_costs(records: list[dict]) -> dict[tuple[str, str, str], float]:
    """(pass, timeframe, model) -> seconds of one job's 12-fold year at the measured rates."""
    rate: dict[tuple[str, str, str, str], float] = {}
    for r in by_figure(records, "seconds per refit"):
        p = r["params"]
        if p.get("seed", 0) == 0:
            rate[(p["pass"], p["timeframe"], p["model"], p["refit"])] = r["value"]
    out = {}
    for ps, tf, model, which in rate:
        if which == "first" and (ps, tf, model, "later") in rate:
            later = rate[(ps, tf, model, "later")]
            out[(ps, tf, model)] = rate[(ps, tf, model, "first")] + (FOLDS_PER_YEAR - 1) * later
    return out


def throughput_1h(train_records: list[dict]) -> dict[str, float]:
    """Paper-setting hourly training windows/s per model at one torch thread (bench_train)."""
    out = {}
    for r in train_records:
        p = r.get("params", {})
        if (r.get("unit") == "windows/s" and p.get("setting") == "paper"
                and str(p.get("series", "")).endswith("1h") and r.get("threads") == 1):  # fmt: skip
            out[p["model"]] = r["value"]
    return out


def whole_grid_estimate(records: list[dict], train_records: list[dict] | None) -> list[str]:
    """What the whole grid (3 coins x 2 timeframes x 4 models, 12 folds) would cost per pass.

    Jobs the sample measured use their rates (daily: the mean over the coins); an hourly model it
    did not run is scaled from the hourly lstm by training throughput (``bench_train``, paper 1h,
    one thread, as the workers run). ``configs/grid.yaml`` is fast on hourly jobs, cold on daily.
    """
    costs, speed = job_costs(records), throughput_1h(train_records or [])
    workers = (records[0]["params"].get("workers") or 1) if records else 1
    scaled: set[str] = set()

    def job(ps: str, tf: str, model: str) -> float | None:
        if (ps, tf, model) in costs:
            return costs[(ps, tf, model)]
        base = costs.get((ps, tf, "lstm"))
        if tf == "1h" and base is not None and speed.get("lstm") and speed.get(model):
            scaled.add(model)
            return base * speed["lstm"] / speed[model]
        return None

    plans = {p: {"1h": p, "1d": p} for p in _passes(records)}
    if "fast" in plans and "cold" in plans:
        plans["configs/grid.yaml"] = {"1h": "fast", "1d": "cold"}
    totals = {}
    for name, by_tf in plans.items():
        jobs = [job(by_tf[tf], tf, m) for tf in ("1h", "1d") for m in NEURAL]
        if all(j is not None for j in jobs):
            totals[name] = COINS * sum(jobs)
    if "cold" not in totals:
        return []
    lines = [
        f"Whole grid, estimated from these rates ({COINS} coins x 1h, 1d x {len(NEURAL)} models, "
        f"{FOLDS_PER_YEAR} folds; wall time = CPU time / {workers} workers"
        + (
            f"; hourly {', '.join(sorted(scaled))} scaled from lstm by training throughput"
            if scaled
            else ""
        )
        + "):",  # fmt: skip
        "",
        "| plan | worker hours | wall hours | speed-up over cold |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, total in totals.items():
        lines.append(f"| {name} | {total / 3600:.1f} | {total / 3600 / workers:.1f} | "
                     f"{totals['cold'] / total:.2f}× |")  # fmt: skip
    return lines + [""]


def skill_table(records: list[dict]) -> list[str]:
    """Each trained job's skill per pass, beside the cold passes' seed mean and spread."""
    cold: dict[tuple, list[float]] = {}
    other: dict[tuple, dict[str, float]] = {}
    for r in by_figure(records, "skill_rmse"):
        p = r["params"]
        if p["model"] in ("persistence", "drift") or r["value"] is None:
            continue
        key = (p["symbol"], p["timeframe"], p["model"])
        if p["pass"] == "cold":
            cold.setdefault(key, []).append(r["value"])
        else:
            other.setdefault(key, {})[p["pass"]] = r["value"]
    verdict = {(r["params"]["pass"], r["params"]["symbol"], r["params"]["timeframe"],
                r["params"]["model"]): r["params"].get("within_2sd")
               for r in by_figure(records, "skill vs cold seeds")}  # fmt: skip
    passes = [p for p in _passes(records) if p != "cold"]
    lines = [
        "| series | model | cold: mean ± sd (seeds) | " + " | ".join(passes) + " |",
        "| --- | --- | --- |" + " ---: |" * len(passes),
    ]
    for key, values in cold.items():
        sd = statistics.stdev(values) if len(values) > 1 else None
        spread = f" ± {sd:.4f}" if sd is not None else ""
        cells = []
        for ps in passes:
            v = other.get(key, {}).get(ps)
            ok = verdict.get((ps, *key))
            mark = "" if ok is None else (" (within 2 sd)" if ok else " (**outside 2 sd**)")
            cells.append("–" if v is None else f"{v:+.4f}{mark}")
        lines.append(f"| {key[0]} {key[1]} | {key[2]} | "
                     f"{sum(values) / len(values):+.4f}{spread} ({len(values)}) | "
                     + " | ".join(cells) + " |")  # fmt: skip
    return lines


def grid_section(doc: dict, quick: bool, train_doc: dict | None = None) -> list[str]:
    records = doc["records"]
    if not by_figure(records, "grid seconds"):
        return []
    first = records[0]["params"]
    slices = "; ".join(
        f"{s['timeframe']}: {', '.join(s['symbols'])} x {', '.join(s['models'])} "
        f"({s['seeds']} cold seed{'s' if s['seeds'] > 1 else ''})"
        for s in first.get("slices", [])
    )
    cmd = first.get("command")
    lines = [
        f"### {doc.get('benchmark', 'grid')}",
        "",
        f"{f'`{cmd}`' if cmd else command('grid', quick)} — {provenance(doc)}",
        "",
        f"Sample of the walk-forward grid ({first.get('data')}; "
        + (f"its last {first['last_folds']}" if first.get("last_folds") else "all its")
        + f" 30-day folds; --workers {first.get('workers')}): "
        f"{slices}. Passes: " + ", ".join(PASS_TEXT.get(p, p) for p in _passes(records)) + ".",
        "",
        *pass_table(records),
        "",
        "Seconds per refit (a job's first refit, cold in every pass, and its later ones), and what "
        f"one job's {FOLDS_PER_YEAR}-fold walk over the year costs at those rates (first + "
        f"{FOLDS_PER_YEAR - 1} later; per worker):",
        "",
        *refit_table(records),
        "",
        *whole_grid_estimate(records, (train_doc or {}).get("records")),
        "Skill vs persistence (1 − RMSE/RMSE of persistence) of every trained job: the cold pass "
        "over its seeds, and each other pass (seed 0) with whether it lies within 2 standard "
        "deviations of the cold seeds:",
        "",
        *skill_table(records),
        "",
    ]
    return lines
