"""Training throughput per model and device, and the wall time of ``make compare``."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from typing import Any

from scripts.gpucheck.sizes import REPO, Budget, config, rec


def throughput_sweep(acc: str, size: dict, budget: Budget, data: Any) -> list[dict]:
    """windows/s per model at batch 256 and 1024: acc mixed, acc fp32, CPU fp32."""
    from bench.bench_train import MODELS, throughput

    records = []
    stop_at = budget.deadline("throughput")
    legs = list(dict.fromkeys([(acc, "mixed"), (acc, "fp32"), ("cpu", "fp32")]))
    for name in MODELS:
        for bs in size["batch_sizes"]:
            for device, mode in legs:
                params = dict(model=name, batch_size=bs, device=device, precision=mode)
                if time.perf_counter() > stop_at:
                    records.append(rec("train throughput skipped", None, "windows/s", **params))
                    continue
                sets = [
                    *size["model_sets"],
                    f"train.device={device}",
                    f"train.precision={mode}",
                    f"train.batch_size={bs}",
                    "train.num_threads=null",
                ]
                r = throughput(config(name, "1h", sets), data, size["throughput_s"])
                records.append(
                    rec(
                        f"train throughput {name} bs{bs} {device} {mode}",
                        r["windows_per_s"],
                        "windows/s",
                        **params,
                        **r,
                    )
                )
    return records


def time_compare(acc: str, size: dict, budget: Budget, dry: bool) -> list[dict]:
    """Wall seconds of ``make compare`` (scripts/compare.py price) with train.device=acc.

    A non-zero exit is raised (a failure); running out of the slot is recorded as value null.
    """
    timeout = max(budget.left(), 10.0)
    with tempfile.TemporaryDirectory(prefix="gpu-check-compare-") as tmp:
        cmd = [
            sys.executable,
            str(REPO / "scripts" / "compare.py"),
            "price",
            "--report",
            f"{tmp}/report",
            "--set",
            f"train.device={acc}",
            "--set",
            "train.num_threads=null",
        ]
        for item in size["compare_sets"]:  # the dry run: one coin, one fold, tiny models
            cmd += ["--set", item]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
            seconds, rc = time.perf_counter() - t0, proc.returncode
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        except subprocess.TimeoutExpired:
            seconds, rc, tail = None, None, [f"timed out after {timeout:.0f} s"]
    if rc not in (0, None):
        raise RuntimeError(f"compare.py price exited {rc}: {' | '.join(tail)}")
    return [
        rec(
            "make compare seconds",
            seconds if rc == 0 else None,
            "s",
            device=acc,
            exit_code=rc,
            dry_run=dry,
            tail=tail,
        )
    ]
