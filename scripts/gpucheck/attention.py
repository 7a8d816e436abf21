"""FAVOR+ against ``scaled_dot_product_attention`` on the accelerator, and its summary records."""

from __future__ import annotations

import time

from scripts.gpucheck.sizes import Budget, rec

DTYPES = ("float32", "bfloat16")
PASSES = ("fwd", "fwd_bwd")


def attention_sweep(acc: str, size: dict, budget: Budget) -> list[dict]:
    """FAVOR+ vs SDPA on ``acc``: L doubling from 256, fwd and fwd+bwd, float32 and bf16."""
    import torch

    from bench.bench_attention import _measure
    from cryptocast.models.favor import orthogonal_gaussian_matrix

    d, m = 64, 256
    proj = orthogonal_gaussian_matrix(m, d, generator=torch.Generator().manual_seed(0)).to(acc)
    stop_at = budget.deadline("attention")
    rows, notes = [], []
    lo, hi = size["L"]
    for dtype in DTYPES:
        for pass_ in PASSES:
            for impl in ("favor", "sdpa"):
                favor = impl == "favor"
                L, last = lo, None
                while hi >= L:
                    grow = 2.0 if favor else 4.0  # linear vs quadratic per doubling
                    if last is not None and last * grow > size["max_call_s"]:
                        notes.append(_stop(impl, dtype, pass_, L, acc, "time cap"))
                        break
                    if time.perf_counter() > stop_at:
                        notes.append(_stop(impl, dtype, pass_, L, acc, "section budget"))
                        break
                    try:
                        r = _measure(
                            impl,
                            L,
                            d,
                            m if favor else None,
                            pass_,
                            acc,
                            3,
                            1,
                            proj if favor else None,
                            dtype,
                        )
                    except torch.OutOfMemoryError:
                        torch.cuda.empty_cache()
                        notes.append(_stop(impl, dtype, pass_, L, acc, "out of memory"))
                        break
                    rows.append(r)
                    last, L = r["seconds"], L * 2
    return rows + notes + attention_summary(rows, acc)


def _stop(impl: str, dtype: str, pass_: str, L: int, device: str, why: str) -> dict:
    return {
        **rec("attention_stopped_at_L", L, "L", impl=impl, dtype=dtype, why=why),
        "impl": impl,
        "pass": pass_,
        "device": device,
    }


def attention_summary(rows: list[dict], device: str) -> list[dict]:
    """Crossover (smallest L from which FAVOR+ is faster at every common L) and the speed-up and
    memory ratio at the longest L both were measured at, per dtype and pass."""
    out = []
    for dtype in DTYPES:
        for pass_ in PASSES:
            sel = [r for r in rows if r["dtype"] == dtype and r["pass"] == pass_]
            fav = {r["L"]: r for r in sel if r["impl"] == "favor"}
            sdp = {r["L"]: r for r in sel if r["impl"] == "sdpa"}
            common = sorted(set(fav) & set(sdp))
            cross = None
            for L in reversed(common):
                if fav[L]["seconds"] < sdp[L]["seconds"]:
                    cross = L
                else:
                    break
            base = {"dtype": dtype, "pass": pass_, "device": device, "impl": "favor"}
            out.append({**rec("attention_crossover_L", cross, "L", **base), **base})
            if common:
                L = common[-1]
                speed = sdp[L]["seconds"] / fav[L]["seconds"]
                out.append({**rec("attention_speedup_longest_L", speed, "x", L=L, **base), **base})
            out.append(
                {
                    **rec("attention_longest_L", max(fav, default=None), "L", **base),
                    **base,
                    "sdpa_longest_L": max(sdp, default=None),
                }
            )
    return out
