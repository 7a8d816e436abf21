"""From ``bench.bench_attention``'s timing rows to its summary records and its log-log plot.

Per (head_dim, pass): SDPA's fitted time and memory exponents; per FAVOR+ nb_features m on top:
the crossover length (FAVOR+ faster from there on), FAVOR+'s exponents, the speed-up at L=4096
and the best achieved GFLOP/s beside the matmul ceiling.
"""

from __future__ import annotations

import math
from typing import Any

from bench.attention_measure import HEADS, B, favor_flops


def fit_exponent(points: list[tuple[int, float]]) -> float | None:
    """Least-squares slope of log(y) on log(L) over the given (L, y) points."""
    if len(points) < 2:
        return None
    xs = [math.log(L) for L, _ in points]
    ys = [math.log(y) for _, y in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def _config(rows: list[dict], impl: str, d: int, pass_: str, m: int | None = None) -> list[dict]:
    """Rows of one configuration: ``impl`` at head_dim ``d`` and ``pass_`` (FAVOR+: ``m``)."""
    return [
        r
        for r in rows
        if r["impl"] == impl
        and r["head_dim"] == d
        and r["pass"] == pass_
        and (impl != "favor" or r["nb_features"] == m)
    ]


def _curves(rows: list[dict]) -> tuple[list[tuple[int, float]], list[tuple[int, int]]]:
    """(L, seconds) sorted by L, and (L, peak bytes) where a peak was measured."""
    times = sorted((r["L"], r["seconds"]) for r in rows)
    return times, [(r["L"], r["peak_bytes"]) for r in rows if r["peak_bytes"] > 0]


def _summary(
    figure: str, value: Any, unit: str, impl: str, dims: dict, params: dict | None = None, **extra
) -> dict[str, Any]:
    """A summary record: its dimensions at the top level and, unless ``params`` says otherwise,
    as its params."""
    params = dims if params is None else params
    return {"figure": figure, "value": value, "unit": unit, "params": params, "impl": impl,
            **dims, **extra}  # fmt: skip


def _crossover(fav: list[tuple[int, float]], sdpa: list[tuple[int, float]]) -> int | None:
    """The smallest L from which FAVOR+ is faster at every measured L."""
    sdpa_t, fav_t = dict(sdpa), dict(fav)
    cross = None
    for L in reversed([L for L, _ in fav if L in sdpa_t]):
        if not fav_t[L] < sdpa_t[L]:
            break
        cross = L
    return cross


def summaries(
    rows: list[dict[str, Any]], device: str, ceiling: float, key: str = "seconds"
) -> list[dict[str, Any]]:
    """Crossover, exponents, speed-up at 4096 and best GFLOP/s, from the ``key`` timings."""
    out: list[dict[str, Any]] = []
    rows = [{**r, "seconds": r[key]} for r in rows]
    for d in sorted({r["head_dim"] for r in rows}):
        for pass_ in ("fwd", "fwd_bwd"):
            sdpa_rows = _config(rows, "sdpa", d, pass_)
            sdpa, sdpa_mem = _curves(sdpa_rows)
            base = {"head_dim": d, "pass": pass_, "device": device}
            dims = {"nb_features": None, **base}
            k_sdpa = fit_exponent(sdpa[-3:] if len(sdpa) >= 4 else sdpa[-2:])
            fit_l = {**base, "fit_L": [L for L, _ in sdpa[-3:]]}
            out.append(_summary("attention_exponent", k_sdpa, "", "sdpa", dims, fit_l))
            k_mem = fit_exponent(sdpa_mem[-3:])
            out.append(_summary("attention_memory_exponent", k_mem, "", "sdpa", dims, base))
            s4 = next((r for r in sdpa_rows if r["L"] == 4096), None)
            for m in sorted({r["nb_features"] for r in rows if r["impl"] == "favor"}):
                fav_rows = _config(rows, "favor", d, pass_, m)
                fav, fav_mem = _curves(fav_rows)
                params = {**base, "nb_features": m}
                cross = _crossover(fav, sdpa)
                out.append(_summary("attention_crossover_L", cross, "L", "favor", params))
                k_fav = fit_exponent(fav[-3:])
                out.append(_summary("attention_exponent", k_fav, "", "favor", params))
                k_mem = fit_exponent(fav_mem[-3:])
                out.append(_summary("attention_memory_exponent", k_mem, "", "favor", params))
                f4 = next((r for r in fav_rows if r["L"] == 4096), None)
                if f4 and s4:
                    speedup = s4["seconds"] / f4["seconds"]
                    out.append(_summary("attention_speedup_L4096", speedup, "x", "favor", params))
                best = max(
                    (favor_flops(r["L"], d, m, pass_) / r["seconds"] / 1e9 for r in fav_rows),
                    default=None,
                )
                with_ceiling = {**params, "ceiling_gflops": ceiling}
                out.append(
                    _summary("favor_gflops_best", best, "GFLOP/s", "favor", params, with_ceiling,
                             ceiling_gflops=ceiling)
                )  # fmt: skip
    return out


def plot(rows: list[dict[str, Any]], path) -> None:
    """Median seconds against L, log-log, one panel per head_dim (CPU rows), to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dims = sorted({r["head_dim"] for r in rows})
    fig, axes = plt.subplots(1, len(dims), figsize=(6 * len(dims), 4.5), squeeze=False)
    for ax, d in zip(axes[0], dims, strict=True):
        cpu = [r for r in rows if r["head_dim"] == d and r["device"] == "cpu"]
        for impl, m, pass_ in sorted({(r["impl"], r["nb_features"] or 0, r["pass"]) for r in cpu}):
            pts = sorted(
                (r["L"], r["seconds"])
                for r in cpu
                if r["impl"] == impl and (r["nb_features"] or 0) == m and r["pass"] == pass_
            )
            label = f"{impl}{f' m={m}' if m else ''} {pass_}"
            style = "-" if pass_ == "fwd_bwd" else "--"
            ax.plot(
                *zip(*pts, strict=True),
                style,
                marker="o",
                ms=3,
                label=label,
                # one colour per attention variant; solid fwd+bwd, dashed fwd
                color={0: "black", 64: "tab:blue", 128: "tab:orange", 256: "tab:green"}.get(m),
            )
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length L")
        ax.set_ylabel("median seconds")
        ax.set_title(f"B={B}, {HEADS} heads, head_dim={d} (CPU)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
