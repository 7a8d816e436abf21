"""Measuring one attention call for ``bench.bench_attention`` (and ``scripts/gpu_check.py``):
wall time, peak memory, FLOPs, and the matmul ceiling they are set against.

torch is imported inside the functions only: ``bench_attention`` imports this module before it
applies the CLI's thread plan, which must run before torch loads.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

B, HEADS = 1, 4


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def median_seconds(fn, device: str, repeats: int, warmup: int) -> tuple[float, float]:
    """(median, min) wall seconds of ``fn()`` after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def peak_bytes(fn, device: str) -> int:
    """Peak bytes torch allocated during ``fn()`` above what was allocated before (module
    docstring of ``bench.bench_attention``: the CPU has no allocator statistics)."""
    import torch

    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return int(torch.cuda.max_memory_allocated() - base)
    with torch.autograd.profiler.profile(profile_memory=True, use_kineto=False) as prof:
        fn()
    current = peak = 0
    for ev in sorted(prof.function_events, key=lambda e: e.time_range.start):
        current += ev.self_cpu_memory_usage
        peak = max(peak, current)
    return int(peak)


def matmul_gflops(device: str, n: int) -> float:
    """GFLOP/s of one n x n float32 matmul, best of 5: the ceiling FAVOR+ is set against."""
    import torch

    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    _, best = median_seconds(lambda: a @ b, device, repeats=5, warmup=2)
    return 2 * n**3 / best / 1e9  # best of 5: the ceiling


def favor_flops(L: int, d: int, m: int, pass_: str) -> float:
    # Matmuls only (elementwise work is O(L·m), not counted): forward = two feature maps (L·m·d
    # each) + K′ᵀV and Q′(K′ᵀV) = 4·B·H·L·m·d multiply-adds; backward adds six more such products.
    macs = (4 if pass_ == "fwd" else 10) * B * HEADS * L * m * d
    return 2.0 * macs


def measure(impl, L, d, m, pass_, device, repeats, warmup, proj, dtype="float32") -> dict[str, Any]:
    """One ``attention_time`` record; ``dtype`` (float32 | bfloat16) is the q/k/v dtype."""
    import torch
    import torch.nn.functional as F

    from cryptocast.models.favor import favor_attention

    g = torch.Generator(device="cpu").manual_seed(L + d)
    q, k, v = (
        torch.randn(B, HEADS, L, d, generator=g)
        .to(device, getattr(torch, dtype))
        .requires_grad_(pass_ == "fwd_bwd")
        for _ in range(3)
    )

    def attend():
        if impl == "favor":
            return favor_attention(q, k, v, proj)
        return F.scaled_dot_product_attention(q, k, v)

    if pass_ == "fwd":

        def step():
            with torch.no_grad():
                attend()
    else:

        def step():
            attend().sum().backward()
            q.grad = k.grad = v.grad = None

    seconds, seconds_min = median_seconds(step, device, repeats, warmup)
    peak = peak_bytes(step, device)
    rec: dict[str, Any] = {
        "figure": "attention_time",
        "value": seconds,
        "unit": "s",
        "params": {"B": B, "heads": HEADS, "L": L, "head_dim": d, "nb_features": m, "dtype": dtype},
        "impl": impl,
        "L": L,
        "head_dim": d,
        "nb_features": m,
        "pass": pass_,
        "seconds": seconds,
        "seconds_min": seconds_min,
        "repeats": repeats,
        "peak_bytes": peak,
        "device": device,
        "dtype": dtype,
        "gflops": None,
    }
    if impl == "favor":
        rec["gflops"] = favor_flops(L, d, m, pass_) / seconds / 1e9
    return rec
