"""Shared helpers for benchmarks: timing, records, configs, machine info, the results-file writer
and the command line.

Every benchmark module in ``bench/`` exposes ``run(quick: bool) -> list[dict]`` returning records
(each with at least ``figure``, ``value``, ``unit`` and ``params``, plus any extra fields; see
:func:`record`) and a ``NAME`` used for ``bench/results/{NAME}.json``; its ``__main__`` block is
:func:`main` (or :func:`cli` + :func:`report` when it takes more options). ``bench.run`` runs each
module in its own process. Candle data for a benchmark: :mod:`bench.candles`; override sets several
benchmarks share: :mod:`bench.settings`.

Nothing here imports torch or cryptocast at module level: benchmarks set their thread plan before
torch loads, and import this module first.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# CRYPTOCAST_BENCH_RESULTS lets bench.run (and its test) redirect results to another folder.
RESULTS_DIR = Path(
    os.environ.get("CRYPTOCAST_BENCH_RESULTS", Path(__file__).resolve().parent / "results")
)
REPO = Path(__file__).resolve().parent.parent
SHARED_OHLCV = Path(
    os.environ.get("CRYPTOCAST_SHARED_DATA", REPO.parent / "shared" / "data" / "ohlcv" / "binance")
)


def median_time(
    fn: Callable[[], Any], repeats: int = 5, warmup: int = 1
) -> tuple[float, list[float]]:
    """Median wall time of ``fn()`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        )
        return out.stdout.strip() or None
    except OSError:
        return None


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:  # pragma: no cover
        info["torch"] = None
    return info


def results_path(results_dir: Path, name: str, quick: bool) -> Path:
    """``{results_dir}/{name}.json``, or ``{name}.quick.json`` in quick mode."""
    return Path(results_dir) / (f"{name}.quick.json" if quick else f"{name}.json")


def write_results(name: str, records: list[dict[str, Any]], quick: bool) -> Path:
    """Write ``bench/results/{name}.json`` (or ``{name}.quick.json`` in quick mode) atomically."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = results_path(RESULTS_DIR, name, quick)
    doc = {
        "benchmark": name,
        "quick": quick,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git_commit": git_commit(),
        "machine": machine_info(),
        "records": records,
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=str))
    os.replace(tmp, path)
    return path


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Wall seconds of one ``fn()`` call, and what it returned."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def record(
    figure: str, value: Any, unit: str, params: dict, digits: int | None = 3, **extra: Any
) -> dict[str, Any]:
    """One results record; ``value`` rounded to ``digits`` decimals (None: kept as given)."""
    if value is not None and digits is not None:
        value = round(float(value), digits)
    return {"figure": figure, "value": value, "unit": unit, "params": params, **extra}


def config(name: str, overrides: list[str] | None = None) -> Any:
    """``configs/{name}.yaml`` of this checkout with ``overrides`` applied."""
    from cryptocast.config.schema import load_config

    return load_config(REPO / "configs" / f"{name}.yaml", list(overrides or []))


def backtest_seconds(
    data_dir: Path, overrides: list[str], repeats: int = 1
) -> tuple[float, float, list]:
    """(median, fastest) wall time of ``run_backtest`` of configs/tiny.yaml + ``overrides`` over
    ``repeats`` runs, and the last run's results. The fastest run is the least disturbed one on a
    shared machine. The config is built once, outside the timings."""
    from cryptocast.evaluate.backtest import run_backtest

    cfg = config("tiny", overrides)
    out: dict = {}

    def once() -> None:
        out["results"] = run_backtest(cfg, data_dir)

    seconds, times = median_time(once, repeats=repeats, warmup=0)
    return seconds, min(times), out["results"]


def cli(doc: str, quick_help: str) -> argparse.ArgumentParser:
    """A benchmark's command line: its docstring's first paragraph and ``--quick``."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=quick_help)
    return parser


def report(name: str, records: list[dict[str, Any]], quick: bool, echo: str = "path") -> Path:
    """Write the results file and print it: its path (``echo="path"``), the whole document
    (``"json"``) or one line per record and then the path (``"records"``)."""
    path = write_results(name, records, quick)
    if echo == "json":
        print(path.read_text())
        return path
    if echo == "records":
        for r in records:
            print(f"{r['figure']:56s} {str(r['value']):>10} {r['unit']}")
    print(path)
    return path


def main(
    name: str,
    run: Callable[[bool], list[dict[str, Any]]],
    doc: str,
    quick_help: str,
    echo: str = "path",
) -> Path:
    """``python -m bench.bench_x [--quick]`` for a benchmark whose ``run`` takes only ``quick``."""
    quick = cli(doc, quick_help).parse_args().quick
    return report(name, run(quick), quick, echo)
