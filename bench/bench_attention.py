"""Attention scaling: FAVOR+ (cryptocast.models.favor) vs exact softmax attention (SDPA).

For B=1 and 4 heads, head_dim 32/64, nb_features 64/128/256 and L = 64 ... 16384 (powers of 2),
times the forward and forward+backward passes (median of several runs after warm-up) and measures
peak memory. Summary records give the crossover length (FAVOR+ faster from there on), the fitted
exponent k of time ∝ L^k over the largest lengths, FAVOR+'s achieved GFLOP/s against one large
matmul measured in the same run, and the speed-up at L=4096. Also writes attention.png (log-log).

Peak memory: on CUDA ``torch.cuda.max_memory_allocated``; on the CPU torch has no allocator
statistics, so one extra call runs under ``torch.autograd.profiler.profile(profile_memory=True)``
and the peak of the running sum of every op's self allocations (alloc − free, in time order) is
taken: the peak bytes torch allocated during the call, above the (already allocated) inputs.

Timings use the CLI's thread plan (``cryptocast.training.threads``) unless ``OMP_WAIT_POLICY`` is set.

Measuring one call: :mod:`bench.attention_measure`; the summary records and the plot:
:mod:`bench.attention_summary`; this module runs the sweep.

Run: ``python -m bench.bench_attention`` (full, ~5 min on 2 cores) or ``--quick`` (seconds).
"""

from __future__ import annotations

from typing import Any

# Neither module imports torch at module level, so the plan below still runs before torch loads.
from bench.attention_measure import matmul_gflops, measure
from bench.attention_summary import plot, summaries
from bench.common import RESULTS_DIR, main
from cryptocast.training.threads import apply_thread_plan

# The CLI's plan: idle OpenMP threads sleep (PASSIVE) only when other processes keep the cores
# busy, where a spinning barrier inflated multi-op FAVOR+ timings up to 10x; on a quiet machine
# OpenMP's default. Read when torch loads OpenMP, so it runs before the first ``import torch``.
apply_thread_plan(1)

NAME = "attention"
FULL_L = [64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384]
QUICK_L = [64, 256, 1024]
SDPA_MAX_SECONDS = 6.0  # skip SDPA at larger L once one call is predicted to exceed this
_measure = measure  # scripts/gpu_check.py imports it from here


def run(quick: bool) -> list[dict[str, Any]]:
    import torch

    from cryptocast.models.favor import orthogonal_gaussian_matrix

    lengths = QUICK_L if quick else FULL_L
    dims = [32] if quick else [32, 64]
    features = [64] if quick else [64, 128, 256]
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows: list[dict[str, Any]] = []
    summary: list[dict[str, Any]] = []
    for device in devices:
        ceiling = matmul_gflops(device, 1024 if quick else 2048)
        summary.append(
            {
                "figure": "matmul_gflops",
                "value": ceiling,
                "unit": "GFLOP/s",
                "params": {"n": 1024 if quick else 2048, "dtype": "float32"},
                "device": device,
            }
        )
        skipped: list[dict[str, Any]] = []
        for d in dims:
            for pass_ in ("fwd", "fwd_bwd"):
                for m in features:
                    proj = orthogonal_gaussian_matrix(
                        m, d, generator=torch.Generator().manual_seed(0)
                    )
                    proj = proj.to(device)
                    for L in lengths:
                        reps = 3 if quick or L >= 8192 else 5
                        rows.append(measure("favor", L, d, m, pass_, device, reps, 1, proj))
                last: tuple[int, float] | None = None  # (L, seconds) of the previous SDPA row
                for L in lengths:
                    # SDPA is quadratic: predict this L from the last one (×4 per doubling) and
                    # skip once a single call would exceed SDPA_MAX_SECONDS.
                    if last is not None and last[1] * (L / last[0]) ** 2 > SDPA_MAX_SECONDS:
                        skipped.append({"L": L, "head_dim": d, "pass": pass_})
                        continue
                    reps = 3 if quick or L >= 4096 else 5
                    r = measure("sdpa", L, d, None, pass_, device, reps, 1, None)
                    rows.append(r)
                    last = (L, r["seconds"])
        if skipped:
            summary.append(
                {
                    "figure": "attention_sdpa_skipped",
                    "value": len(skipped),
                    "unit": "configs",
                    "params": {"max_seconds": SDPA_MAX_SECONDS},
                    "skipped": skipped,
                    "device": device,
                }
            )
        dev_rows = [r for r in rows if r["device"] == device]
        # Figures from the medians (the contract), each with the same figure from the fastest run
        # as ``value_min``: on a shared 2-core machine the median can be inflated by other load.
        medians = summaries(dev_rows, device, ceiling)
        bests = summaries(dev_rows, device, ceiling, key="seconds_min")
        for med, best in zip(medians, bests, strict=True):
            med["value_min"] = best["value"]
        summary += medians
    plot(rows, RESULTS_DIR / ("attention.quick.png" if quick else "attention.png"))
    return rows + summary


if __name__ == "__main__":
    main(NAME, run, __doc__, "small L only (seconds)")
