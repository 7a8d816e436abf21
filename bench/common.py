"""Shared helpers for benchmarks: timing, machine info, and the results-file writer.

Every benchmark module in ``bench/`` exposes ``run(quick: bool) -> list[dict]`` returning records
(each with at least ``figure``, ``value``, ``unit`` and ``params``, plus any extra fields) and a
``NAME`` used for ``bench/results/{NAME}.json``. ``bench.run`` runs each module in its own process.
"""

from __future__ import annotations

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


def write_results(name: str, records: list[dict[str, Any]], quick: bool) -> Path:
    """Write ``bench/results/{name}.json`` (or ``{name}.quick.json`` in quick mode) atomically."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / (f"{name}.quick.json" if quick else f"{name}.json")
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
