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
from bench.tables_attention import attention_rows, attention_section
from bench.tables_common import command, fmt, provenance, with_unit
from bench.tables_grid import grid_section
from bench.tables_paper_grid import paper_grid_section, readme_block

# Summary-table rows per benchmark: (stage label, figure patterns shown). A benchmark not listed here
# shows all its figures; figures not listed stay in the per-benchmark detail section.
SUMMARY: dict[str, tuple[str, list[str]]] = {
    "fetch": ("fetch / import", ["fetch candles/s", "fetch requests", "import candles/s"]),
    "store": (
        "store (daily 5m append)",
        ["append one day seconds, *", "append speed-up*", "read whole series seconds, *"],
    ),
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
    "quantile": ("quantile vs point", ["quantile/point *"]),
    "darts": ("vs darts (live)", ["* ours vs darts*"]),
    "grid": ("walk-forward grid", ["grid seconds", "grid speed-up"]),
    "paper_grid": ("the paper's whole grid", ["grid seconds", "grid speed-up"]),
    "threads": ("threads", ["threads * speed-up, new default over *"]),
    "grid_exec": (
        "executors / tune",
        [
            "grid seconds, *",
            "grid speed-up over serial, *",
            "ray start-up seconds*",
            "tune trials per minute, *",
        ],
    ),
}
# Extra record fields worth a note next to the value in the summary table.
NOTES = {
    "value_min": "fastest run {}",
    "seconds_per_fold": "{} s per fold",
    "speedup_vs_anchor": "speed-up vs anchor {}×",
    "pruned": "{} pruned",
}
# Top-level record fields that, like params, tell apart records of one figure.
DIMENSIONS = ("threads",)
ORDER = [
    "fetch", "store", "features", "train", "backtest", "darts", "grid", "paper_grid", "threads",
    "grid_exec",
    "forecast", "attention", "quantile",
]  # fmt: skip
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


def value_cell(rec: dict) -> str:
    """A record's value; a peer comparison as ``ours X; darts Y (Z× darts, same run)``."""
    if rec.get("skipped"):
        return f"skipped: {rec.get('reason', 'no reason given')}"
    value = with_unit(rec["value"], rec["unit"])
    if "darts_value" not in rec:
        return value
    darts = with_unit(rec["darts_value"], rec["unit"])
    lo, hi = min(rec.get("ratios") or [0]), max(rec.get("ratios") or [0])
    spread = f", rounds {fmt(lo)}–{fmt(hi)}" if len(rec.get("ratios") or []) > 1 else ""
    return f"ours {value}; darts {darts} ({fmt(rec['x_darts'])}× darts, same run{spread})"


def _dims(rec: dict) -> dict[str, Any]:
    """Scalar parameters of a record: its params plus the :data:`DIMENSIONS` fields."""
    dims = {**rec.get("params", {}), **{k: rec[k] for k in DIMENSIONS if k in rec}}
    return {k: v for k, v in dims.items() if not isinstance(v, list | dict)}


def _params_text(rec: dict) -> str:
    text = ", ".join(f"{k}={v}" for k, v in _dims(rec).items())
    if "darts_value" in rec:  # a live peer comparison: how each side ran, and the load
        text += (
            f", darts_threads={rec.get('darts_threads')}, OMP_WAIT_POLICY ours/darts="
            f"{rec.get('omp_wait_policy')}/{rec.get('darts_omp_wait_policy')}, load average "
            f"{fmt(rec.get('loadavg_1m'))}→{fmt(rec.get('loadavg_1m_after'))}"
        )
    return text


def _varying_label(rec: dict, same_figure: list[dict]) -> str:
    """The parameters that tell apart records sharing a figure (e.g. ``coin=BTC``)."""
    dims = _dims(rec)
    keys = [k for k in dims if len({str(_dims(r).get(k)) for r in same_figure}) > 1]
    return ", ".join(f"{k}={dims[k]}" for k in keys)


def is_grid(name: str) -> bool:
    """``grid`` and the extra slices ``bench_grid --name grid_x`` writes beside it."""
    return name == "grid" or (name.startswith("grid_") and name != "grid_exec")


def _summary_rows(name: str, doc: dict, quick: bool) -> list[str]:
    records = doc["records"]
    cmd = command(name, quick)
    if is_grid(name) and records and records[0]["params"].get("command"):
        cmd = f"`{records[0]['params']['command']}`"
    out: list[str] = []
    if name == "attention":
        return [
            f"| attention | {label} | {value} | {cmd} |" for label, value in attention_rows(doc)
        ]
    stage, figures = SUMMARY.get(
        "grid" if is_grid(name) else name, (name, [r["figure"] for r in records])
    )
    # Patterns (fnmatch) in listed order; each figure once, in the order the benchmark wrote it.
    matched = [r["figure"] for pat in figures for r in records if fnmatchcase(r["figure"], pat)]
    for fig in dict.fromkeys(matched):
        same = [r for r in records if r["figure"] == fig]
        for rec in same:
            label = _varying_label(rec, same)
            label = f"{fig} ({label})" if label else fig
            notes = "; ".join(t.format(fmt(rec[k])) for k, t in NOTES.items() if rec.get(k))
            value = value_cell(rec) + (f" ({notes})" if notes else "")
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
        f"{command('train', doc['quick'])}:",
        "",
        "| model | torch threads | " + " | ".join(columns) + " |",
        "| --- | ---: | " + " | ".join("---:" for _ in columns) + " |",
    ]
    for (model, threads), row in cells.items():
        vals = " | ".join(fmt(row.get(c)) for c in columns)
        lines.append(f"| {model} | {fmt(threads)} | {vals} |")
    return lines + [""]


def _detail(name: str, doc: dict, quick: bool) -> list[str]:
    lines = [f"### {name}", "", f"{command(name, quick)} — {provenance(doc)}", ""]
    lines += ["| figure | parameters | value |", "| --- | --- | --- |"]
    for rec in doc["records"]:
        lines.append(f"| {rec['figure']} | {_params_text(rec)} | {value_cell(rec)} |")
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
            lines += attention_section(docs[name], quick, results_dir)
        elif name == "paper_grid" and name in docs:
            lines += paper_grid_section(docs[name], quick) or _detail(name, docs[name], quick)
        elif is_grid(name) and name in docs:
            lines += grid_section(docs[name], quick, docs.get("train")) or _detail(
                name, docs[name], quick
            )
        elif name in docs:
            lines += _detail(name, docs[name], quick)
    return "\n".join(lines).rstrip() + "\n"


def markdown_path(results_dir: Path, quick: bool) -> Path:
    """``RESULTS.md`` (or ``RESULTS.quick.md``) next to the results folder."""
    return Path(results_dir).parent / ("RESULTS.quick.md" if quick else "RESULTS.md")


DOC_START, DOC_END = "<!-- bench:start -->", "<!-- bench:end -->"
PERFORMANCE_DOC = RESULTS_DIR.parent.parent / "docs" / "performance.md"


def performance_block(results_dir: Path = RESULTS_DIR) -> str:
    """docs/performance.md's generated block: machine, summary, training and attention tables.

    Cut from the same rendering as ``RESULTS.md`` (links relative to ``docs/``), so the page never
    carries a typed number.
    """
    doc = render(results_dir, False)
    body = doc.split("## Details")[0].split("-->", 1)[1].strip()
    docs = load_results(results_dir, False)
    if "attention" in docs:
        body += "\n\n" + "\n".join(attention_section(docs["attention"], False, results_dir))
    body = body.replace("](results/", "](../bench/results/")
    return body.strip() + "\n"


def replace_block(page: Path, start: str, end: str, body: str) -> bool:
    """Replace the text between the ``start`` and ``end`` markers in ``page``; True if it
    changed (False, untouched, without both markers)."""
    text = page.read_text()
    if start not in text or end not in text:
        return False
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    new = f"{head}{start}\n{body}{end}{tail}"
    if new != text:
        page.write_text(new)
    return new != text


def update_performance_doc(page: Path = PERFORMANCE_DOC, results_dir: Path = RESULTS_DIR) -> bool:
    """Replace the text between the bench markers in ``page``; True if it changed."""
    return replace_block(page, DOC_START, DOC_END, performance_block(results_dir))


GRID_START, GRID_END = "<!-- paper-grid:start -->", "<!-- paper-grid:end -->"
README = RESULTS_DIR.parent.parent / "README.md"


def readme_grid_block(results_dir: Path = RESULTS_DIR) -> str:
    """The README's paper-grid block, from ``paper_grid.json`` (empty before it ran)."""
    doc = load_results(results_dir, False).get("paper_grid")
    return readme_block(doc) if doc else ""


def update_readme(page: Path = README, results_dir: Path = RESULTS_DIR) -> bool:
    """Replace the paper-grid block of the README; True if it changed."""
    return replace_block(page, GRID_START, GRID_END, readme_grid_block(results_dir))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="render the *.quick.json results")
    args = parser.parse_args()
    path = markdown_path(RESULTS_DIR, args.quick)
    path.write_text(render(RESULTS_DIR, args.quick))
    print(path)
    if not args.quick and update_performance_doc():
        print(f"{PERFORMANCE_DOC.relative_to(RESULTS_DIR.parent.parent)} updated")
    if not args.quick and update_readme():
        print("README.md's paper-grid block updated")
