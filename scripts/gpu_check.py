"""``make gpu-check``: the CUDA path trained, compared with the CPU, and measured, in one command.

On a CUDA machine (``--device cuda``, the default when a GPU is present) it

1. checks the precision policy on the GPU: for every registered neural model, the dtype each
   module kind computes in under fp32 and mixed (``precision.observe_dtypes``) against
   ``PrecisionPolicy.module_dtypes`` (cuDNN RNNs under autocast would show float16 here);
2. trains every registered model for a few epochs on the reference daily and hourly BTC/USDT
   candles in fp32 and mixed precision, on the CPU and on CUDA (dropout 0, same seed, same
   batches), and asserts that no loss is NaN and that validation losses agree: CUDA fp32 vs CPU
   fp32 within ``TOL_DEVICE``, mixed vs fp32 on the same device within ``TOL_PRECISION``
   (relative);
3. times FAVOR+ against ``scaled_dot_product_attention`` (FlashAttention / memory-efficient
   kernels on CUDA) from L=256 upwards, forward and forward+backward, float32 and bf16 inputs,
   with peak memory, until a call runs out of memory, would take longer than ``max_call_s``, or L
   reaches ``max_L``; the crossover and the speed-up at the longest common L are summary records;
4. measures training throughput (windows/s, through ``train.fit``) per model at batch 256 and 1024
   on CUDA (mixed and fp32) and on the CPU (fp32), on the hourly BTC feature table;
5. times ``make compare`` (scripts/compare.py price) with ``train.device=cuda``.

Every section stops early, recording what it skipped, when the time budget (``--budget-s``) runs
out, so the whole check fits a fixed slot. Results: ``gpu.json`` in the bench schema
(``bench/schema.py``) with the GPU name and torch/CUDA versions in ``machine``; a failed assertion
is recorded and makes the exit code 1 after the results are written.

``--device cpu`` is the dry run: the same code paths at tiny sizes, with the CPU standing in for
the accelerator (results ``gpu.quick.json``); tests/test_gpu_check.py runs it in CI.

The sections live in ``scripts/gpucheck/`` (sizes and tolerances, training, attention, timing,
results); this file applies the thread plan before torch loads and runs them in order.

Usage::

    python scripts/gpu_check.py                       # CUDA: results in bench/results/gpu.json
    python scripts/gpu_check.py --device cpu --out /tmp/gpu   # dry run, ~30 s
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a plain script from any directory
# before torch loads OpenMP: the CLI's plan (PASSIVE only when other processes keep the cores busy)
from cryptocast.training.threads import apply_thread_plan  # noqa: E402  (needs the path above)

apply_thread_plan(1)

from scripts.gpucheck.attention import attention_sweep  # noqa: E402  (after the thread plan)
from scripts.gpucheck.results import document, write  # noqa: E402
from scripts.gpucheck.sizes import SIZES, Budget, rec  # noqa: E402
from scripts.gpucheck.timing import throughput_sweep, time_compare  # noqa: E402
from scripts.gpucheck.training import check_policy, prepared, train_agreement  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    import torch

    from bench.schema import validate

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--device",
        choices=["cuda", "cpu"],
        default=None,
        help="cuda (default when a GPU is present) or cpu (the dry run, tiny sizes)",
    )
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    p.add_argument("--budget-s", type=float, default=None, help="time slot in seconds")
    args = p.parse_args(argv)
    acc = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if acc == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but torch sees no CUDA GPU; use --device cpu for the dry run")
        return 2
    dry = acc == "cpu"
    size = SIZES[acc]
    budget = Budget(args.budget_s or size["budget_s"], size["done_by"])
    t_start = time.perf_counter()
    records: list[dict] = []
    failures: list[str] = []

    def section(title: str, fn, *a) -> Any:
        """``fn(*a)``, timed; an exception is a failure and None (one broken section must not
        hide the rest). Records it returns (alone, or with failures) join the results, which are
        written at once, in case the slot is cut short (the final write replaces them)."""
        t0 = time.perf_counter()
        print(f"gpu-check: {title} ...", flush=True)
        try:
            out = fn(*a)
        except Exception as err:
            failures.append(f"{title}: {type(err).__name__}: {err}")
            traceback.print_exc()
            out = None
        print(f"gpu-check: {title} done in {time.perf_counter() - t0:.1f} s", flush=True)
        if isinstance(out, tuple):
            records.extend(out[0])
            failures.extend(out[1])
        elif isinstance(out, list):
            records.extend(out)
        write(args.out, document(records, dry, acc))
        return out

    section("precision policy", check_policy, acc, size)
    data = section("reference features", lambda: {tf: prepared(tf, size) for tf in ("1d", "1h")})
    if data:
        section("training agreement", train_agreement, acc, size, budget, data)
    section("attention sweep", attention_sweep, acc, size, budget)
    if data:
        section("throughput", throughput_sweep, acc, size, budget, data["1h"])
    section("make compare", time_compare, acc, size, budget, dry)
    total = time.perf_counter() - t_start
    records.append(rec("gpu-check seconds", round(total, 1), "s", device=acc, dry_run=dry))
    doc = document(records, dry, acc)
    # A renamed or malformed figure fails the check too (bench/schema.py, benchmark "gpu").
    failures += validate({**doc, "records": [*records, rec("gpu-check failures", 0, "")]})
    records.append(rec("gpu-check failures", len(failures), "count", failures=failures))
    path = write(args.out, doc)
    print(f"gpu-check: {len(records)} records in {path}; {total:.0f} s; {len(failures)} failure(s)")
    for f in failures:
        print(f"  FAIL {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
