"""Render ``bench/RESULTS.md`` (or ``RESULTS.quick.md``) from the results files, never by hand.

The output depends only on the JSON files (no clock, no machine lookup), so a test can regenerate
it and compare with the committed file. Benchmarks without a results file are listed as not yet
run. Regenerate without re-running anything: ``python -m bench.tables [--quick]``.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from bench.common import RESULTS_DIR

# Summary-table rows per benchmark: (stage label, figure patterns shown). A benchmark not listed here
# shows all its figures; figures not listed stay in the per-benchmark detail section.
SUMMARY: dict[str, tuple[str, list[str]]] = {
    "fetch": ("fetch / import", ["fetch candles/s", "fetch requests", "import candles/s"]),
    "features": (
        "features",
        [
            "default features rows/s",
            "default features seconds, all three coins",
            "ta.add_all_ta_features seconds (anchor)",
        ],
    ),
    "train": ("training", ["train throughput * darts-anchor", "*BiLSTM*"]),
    "forecast": ("forecast", ["forecast --no-fetch cold start", "python -c 'import torch'"]),
}
# Extra record fields worth a note next to the value in the summary table.
NOTES = {
    "value_min": "fastest run {}",
    "seconds_per_fold": "{} s per fold",
    "darts_windows_per_s": "darts {}",
    "darts_seconds_per_refit": "darts {} s",
    "aim_windows_per_s": "aim {}",
    "aim_seconds_per_refit": "aim {} s",
    "speedup_vs_anchor": "speed-up vs anchor {}×",
}
# Top-level record fields that, like params, tell apart records of one figure.
DIMENSIONS = ("threads",)
ORDER = ["fetch", "features", "train", "backtest", "forecast", "attention"]
NOISE_NOTE = (
    "Timings are medians of several runs after warm-up on a shared 2-core machine on which other "
    "test suites ran concurrently, so they are noisy: a single figure can be off by 2x or more "
    "when a burst of load hit it. Compare ratios measured in the same run (speed-ups, crossovers) "
    "rather than absolute figures across runs."
)


def load_results(results_dir: Path = RESULTS_DIR, quick: bool = False) -> dict[str, dict]:
    """Results documents by benchmark name: ``{name}.json`` (or ``{name}.quick.json``)."""
    docs: dict[str, dict] = {}
    for path in sorted(Path(results_dir).glob("*.json")):
        stem = path.name.removesuffix(".json")
        if stem.endswith(".quick") != quick:
            continue
        docs[stem.removesuffix(".quick")] = json.loads(path.read_text())
    return docs


def fmt(value: Any) -> str:
    """Deterministic human formatting: thousands separators, 3 significant digits below 1000."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.3g}"
    return str(value)


def _with_unit(value: Any, unit: str) -> str:
    if unit == "L":
        return f"L = {fmt(value)}"
    if unit == "x":
        return f"{fmt(value)}×"
    return f"{fmt(value)} {unit}".rstrip() if unit else fmt(value)


def _dims(rec: dict) -> dict[str, Any]:
    """Scalar parameters of a record: its params plus the :data:`DIMENSIONS` fields."""
    dims = {**rec.get("params", {}), **{k: rec[k] for k in DIMENSIONS if k in rec}}
    return {k: v for k, v in dims.items() if not isinstance(v, list | dict)}


def _params_text(rec: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in _dims(rec).items())


def _varying_label(rec: dict, same_figure: list[dict]) -> str:
    """The parameters that tell apart records sharing a figure (e.g. ``coin=BTC``)."""
    dims = _dims(rec)
    keys = [k for k in dims if len({str(_dims(r).get(k)) for r in same_figure}) > 1]
    return ", ".join(f"{k}={dims[k]}" for k in keys)


def _command(name: str, quick: bool) -> str:
    return f"`python -m bench.bench_{name}{' --quick' if quick else ''}`"


def _attention_headline(records: list[dict]) -> tuple[int, int | None] | None:
    """(head_dim, nb_features) of the scaling table: head_dim 64 and m=256 where measured."""
    rows = [r for r in records if r.get("figure") == "attention_time" and r["impl"] == "favor"]
    if not rows:
        return None
    d = 64 if any(r["head_dim"] == 64 for r in rows) else max(r["head_dim"] for r in rows)
    ms = {r["nb_features"] for r in rows if r["head_dim"] == d}
    return d, (256 if 256 in ms else max(ms))


ATTENTION_SUMMARY = {
    "attention_speedup_L4096": "FAVOR+ speed-up over SDPA at L=4096",
    "attention_crossover_L": "crossover L (FAVOR+ faster from here)",
    "attention_exponent": "fitted exponent k, time ∝ L^k",
    "favor_gflops_best": "FAVOR+ best GFLOP/s",
}


def _attention_rows(doc: dict) -> list[tuple[str, str]]:
    """(label, value) summary rows for the headline configuration (head_dim 64, m=256)."""
    records = doc["records"]
    head = _attention_headline(records)
    if head is None:
        return []
    rows = []
    for pass_ in ("fwd_bwd", "fwd"):
        for fig, text in ATTENTION_SUMMARY.items():
            for rec in records:
                p = rec.get("params", {})
                if rec["figure"] != fig or (p.get("head_dim"), p.get("pass")) != (head[0], pass_):
                    continue
                if rec.get("impl") == "favor" and p.get("nb_features") != head[1]:
                    continue
                label = f"{text}: {rec.get('impl', '')} {pass_}, head_dim={head[0]}"
                label += f", m={head[1]}" if rec.get("impl") == "favor" else ""
                value = _with_unit(rec["value"], rec["unit"])
                notes = []
                if rec.get("value_min") is not None:
                    notes.append(f"fastest runs: {fmt(rec['value_min'])}")
                if rec.get("ceiling_gflops"):
                    notes.append(f"matmul ceiling {fmt(rec['ceiling_gflops'])}")
                rows.append((label, value + (f" ({'; '.join(notes)})" if notes else "")))
    return rows


def _summary_rows(name: str, doc: dict, quick: bool) -> list[str]:
    records = doc["records"]
    cmd = _command(name, quick)
    out: list[str] = []
    if name == "attention":
        return [
            f"| attention | {label} | {value} | {cmd} |" for label, value in _attention_rows(doc)
        ]
    stage, figures = SUMMARY.get(name, (name, [r["figure"] for r in records]))
    # Patterns (fnmatch) in listed order; each figure once, in the order the benchmark wrote it.
    matched = [r["figure"] for pat in figures for r in records if fnmatchcase(r["figure"], pat)]
    for fig in dict.fromkeys(matched):
        same = [r for r in records if r["figure"] == fig]
        for rec in same:
            label = _varying_label(rec, same)
            label = f"{fig} ({label})" if label else fig
            notes = "; ".join(t.format(fmt(rec[k])) for k, t in NOTES.items() if rec.get(k))
            value = _with_unit(rec["value"], rec["unit"]) + (f" ({notes})" if notes else "")
            out.append(f"| {stage} | {label} | {value} | {cmd} |")
    return out


def _train_pivot(doc: dict) -> list[str]:
    """Windows/s per model (rows) and setting (columns: paper 1d, paper 1h, darts-anchor)."""
    cells: dict[tuple[str, Any], dict[str, Any]] = {}
    columns: list[str] = []
    for rec in doc["records"]:
        p = rec.get("params", {})
        if rec.get("unit") != "windows/s" or "model" not in p or "setting" not in p:
            continue
        col = p["setting"] + (f" {rec['figure'].split()[-1]}" if p["setting"] == "paper" else "")
        columns.append(col)
        cells.setdefault((p["model"], rec.get("threads")), {})[col] = rec["value"]
    if not cells:
        return []
    columns = list(dict.fromkeys(sorted(columns, key=lambda c: (c.startswith("darts"), c))))
    lines = [
        "Training throughput (windows/s: forward + backward + optimiser step), "
        f"{_command('train', doc['quick'])}:",
        "",
        "| model | torch threads | " + " | ".join(columns) + " |",
        "| --- | ---: | " + " | ".join("---:" for _ in columns) + " |",
    ]
    for (model, threads), row in cells.items():
        vals = " | ".join(fmt(row.get(c)) for c in columns)
        lines.append(f"| {model} | {fmt(threads)} | {vals} |")
    return lines + [""]


def _detail(name: str, doc: dict, quick: bool) -> list[str]:
    lines = [f"### {name}", "", f"{_command(name, quick)} — {_provenance(doc)}", ""]
    lines += ["| figure | parameters | value |", "| --- | --- | --- |"]
    for rec in doc["records"]:
        val = _with_unit(rec["value"], rec["unit"])
        lines.append(f"| {rec['figure']} | {_params_text(rec)} | {val} |")
    return lines + [""]


def _provenance(doc: dict) -> str:
    return f"created {doc['created']}, commit {doc.get('git_commit') or 'unknown'}"


def _ms(x: float | None) -> str:
    return "–" if x is None else fmt(x * 1000)


def _both(median: Any, fastest: Any, f=fmt) -> str:
    """``median (fastest)`` when the fastest-run figure was recorded, else the median alone."""
    return f(median) if fastest is None else f"{f(median)} ({f(fastest)})"


def _ratio(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def _mib(x: int | None) -> str:
    return "–" if x is None else fmt(x / 2**20)


def _attention(doc: dict, quick: bool, results_dir: Path) -> list[str]:
    records = doc["records"]
    timing = [r for r in records if r["figure"] == "attention_time"]
    lines = ["### attention", "", f"{_command('attention', quick)} — {_provenance(doc)}", ""]
    for dev in sorted({r["device"] for r in timing}):
        head = _attention_headline([r for r in timing if r["device"] == dev])
        if head is None:
            continue
        d, m = head

        def pick(impl: str, L: int, pass_: str, dev: str = dev, d: int = d, m: int = m):
            for r in timing:
                want_m = m if impl == "favor" else None
                if (r["device"], r["impl"], r["L"], r["head_dim"], r["nb_features"]) == (
                    dev,
                    impl,
                    L,
                    d,
                    want_m,
                ) and r["pass"] == pass_:
                    return r
            return None

        bhd = timing[0].get("params", {})
        lines += [
            f"Scaling on {dev}: B={bhd.get('B')}, heads={bhd.get('heads')}, head_dim={d}, "
            f"FAVOR+ nb_features m={m}; median ms per call, fastest run in parentheses where "
            "recorded (ratio = SDPA / FAVOR+, > 1 means FAVOR+ is faster); peak memory in MiB "
            "for forward+backward.",
            "",
            "| L | favor fwd | sdpa fwd | ratio | favor fwd+bwd | sdpa fwd+bwd | ratio "
            "| favor peak MiB | sdpa peak MiB |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for L in sorted({r["L"] for r in timing if r["device"] == dev and r["head_dim"] == d}):
            cells = [fmt(L)]
            for pass_ in ("fwd", "fwd_bwd"):
                f, s = pick("favor", L, pass_), pick("sdpa", L, pass_)
                ratio = s["seconds"] / f["seconds"] if f and s else None
                fast = (f or {}).get("seconds_min"), (s or {}).get("seconds_min")
                ratio_min = fast[1] / fast[0] if None not in fast else None
                cells += [
                    _both(f and f["seconds"], fast[0], _ms),
                    _both(s and s["seconds"], fast[1], _ms),
                    _both(ratio, ratio_min, _ratio),
                ]
            fb, sb = pick("favor", L, "fwd_bwd"), pick("sdpa", L, "fwd_bwd")
            cells += [_mib(fb and fb["peak_bytes"]), _mib(sb and sb["peak_bytes"])]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += _attention_summary(records)
    png = "attention.quick.png" if quick else "attention.png"
    if (Path(results_dir) / png).is_file():
        lines += [f"![attention time vs L, log-log](results/{png})", ""]
    return lines


NONE2 = (None, None)


def _pair(rec: dict) -> tuple[Any, Any]:
    """(median-based value, fastest-run value or None) of a summary record."""
    return rec["value"], rec.get("value_min")


def _attention_summary(records: list[dict]) -> list[str]:
    """Crossover, exponents, speed-up and GFLOP/s per (device, head_dim, m, pass)."""
    figs = {
        "attention_crossover_L": "crossover L",
        "attention_speedup_L4096": "speed-up at L=4096",
        "favor_gflops_best": "FAVOR+ best GFLOP/s",
    }
    table: dict[tuple, dict[str, Any]] = {}
    ceilings = {
        r.get("device", "cpu"): r["value"] for r in records if r["figure"] == "matmul_gflops"
    }
    k_sdpa: dict[tuple, Any] = {}
    for r in records:
        p = r.get("params", {})
        if r["figure"] == "attention_exponent" and r.get("impl") == "sdpa":
            k_sdpa[(p.get("device"), p.get("head_dim"), p.get("pass"))] = _pair(r)
            continue
        if r["figure"] == "attention_time" or r.get("impl") != "favor" or "nb_features" not in p:
            continue
        key = (p.get("device"), p.get("head_dim"), p.get("nb_features"), p.get("pass"))
        row = table.setdefault(key, {})
        if r["figure"] in figs:
            row[r["figure"]] = _pair(r)
        elif r["figure"] == "attention_exponent":
            row["k_favor"] = _pair(r)
        elif r["figure"] == "attention_memory_exponent":
            row["k_mem"] = _pair(r)
    if not table:
        return []
    lines = [
        "Fitted exponents k of time ∝ L^k over the three largest measured L (FAVOR+ should be "
        "≈ 1, SDPA ≈ 2), memory exponent of FAVOR+'s peak bytes, crossover (smallest L from which "
        "FAVOR+ is faster at every longer L), and FAVOR+'s best achieved GFLOP/s against one "
        "large float32 matmul in the same run (the ceiling). From the medians; in parentheses "
        "the same figure from each configuration's fastest run, where recorded.",
        "",
        "| device | head_dim | m | pass | crossover L | k FAVOR+ | k SDPA | k memory FAVOR+ "
        "| speed-up at L=4096 | FAVOR+ GFLOP/s | matmul GFLOP/s |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key in sorted(table, key=lambda k: (str(k[0]), k[1] or 0, k[2] or 0, str(k[3]))):
        dev, d, m, pass_ = key
        row = table[key]
        cells = [
            str(dev),
            fmt(d),
            fmt(m),
            pass_,
            _both(*row.get("attention_crossover_L", NONE2)),
            _both(*row.get("k_favor", NONE2)),
            _both(*k_sdpa.get((dev, d, pass_), NONE2)),
            _both(*row.get("k_mem", NONE2)),
            _both(*row.get("attention_speedup_L4096", NONE2)),
            _both(*row.get("favor_gflops_best", NONE2)),
            fmt(ceilings.get(dev)),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def render(
    results_dir: Path = RESULTS_DIR, quick: bool = False, names: list[str] | None = None
) -> str:
    """The whole Markdown document for the full (or quick) results in ``results_dir``.

    Args:
        results_dir: folder of ``*.json`` results files.
        quick: render ``*.quick.json`` (smoke figures) instead of the full results.
        names: benchmarks expected to exist; missing ones are listed as not yet run. Defaults
            to :data:`ORDER` (the benchmarks the issues ask for), so the document depends on the
            results files only, not on which bench modules happen to exist yet.
    """
    docs = load_results(results_dir, quick)
    expected = list(dict.fromkeys([*(ORDER if names is None else names), *docs]))
    ordered = sorted(expected, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    title = "Benchmark results" + (" (quick smoke mode, not representative)" if quick else "")
    lines = [
        f"# {title}",
        "",
        "<!-- Generated by `python -m bench.run` (`make bench`) from bench/results/*.json; "
        "do not edit by hand. Tables only: `python -m bench.tables`. -->",
        "",
    ]
    # torch_threads is what the benchmark left set when it wrote its file, so list it apart.
    machines = {
        json.dumps({k: v for k, v in d["machine"].items() if k != "torch_threads"}, sort_keys=True)
        for d in docs.values()
    }
    for mj in sorted(machines):
        m = json.loads(mj)
        lines.append(
            f"Machine: {m.get('cpu_count')} CPUs ({m.get('processor', '?')}, "
            f"{m.get('platform', '?')}), Python {m.get('python')}, torch {m.get('torch')}, "
            f"CUDA: {m.get('cuda') or 'none'}."
        )
    if docs:
        counts = Counter(d["machine"].get("torch_threads") for d in docs.values())
        usual = counts.most_common(1)[0][0]
        odd = [f"{n} {d['machine'].get('torch_threads')}" for n, d in docs.items()
               if d["machine"].get("torch_threads") != usual]  # fmt: skip
        lines[-1] = (
            lines[-1][:-1]
            + f", torch threads {usual}"
            + (f" (set by the benchmark: {', '.join(odd)})." if odd else ".")
        )
    lines += ["", NOISE_NOTE, ""]
    missing = [n for n in ordered if n not in docs]
    if missing:
        run_cmd = "make bench-quick" if quick else "make bench"
        lines += [f"Not yet run ({run_cmd}): {', '.join(missing)}.", ""]
    lines += [
        "## Pipeline throughput summary",
        "",
        "| stage | figure | value | command |",
        "| --- | --- | ---: | --- |",
    ]
    for name in ordered:
        if name in docs:
            lines += _summary_rows(name, docs[name], quick)
    lines.append("")
    if "train" in docs:
        lines += _train_pivot(docs["train"])
    lines += ["## Details", ""]
    for name in ordered:
        if name == "attention" and name in docs:
            lines += _attention(docs[name], quick, results_dir)
        elif name in docs:
            lines += _detail(name, docs[name], quick)
    return "\n".join(lines).rstrip() + "\n"


def markdown_path(results_dir: Path, quick: bool) -> Path:
    """``RESULTS.md`` (or ``RESULTS.quick.md``) next to the results folder."""
    return Path(results_dir).parent / ("RESULTS.quick.md" if quick else "RESULTS.md")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="render the *.quick.json results")
    args = parser.parse_args()
    path = markdown_path(RESULTS_DIR, args.quick)
    path.write_text(render(RESULTS_DIR, args.quick))
    print(path)
