"""Attention part of ``bench/RESULTS.md``: FAVOR+ vs SDPA scaling table, exponents, crossover.

Split from :mod:`bench.tables`, which imports it; the formatting helpers both use live in
:mod:`bench.tables_common`. The headline configuration is head_dim 64 with nb_features m=256
where measured.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.tables_common import command, fmt, provenance, with_unit


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


def attention_rows(doc: dict) -> list[tuple[str, str]]:
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
                value = with_unit(rec["value"], rec["unit"])
                notes = []
                if rec.get("value_min") is not None:
                    notes.append(f"fastest runs: {fmt(rec['value_min'])}")
                if rec.get("ceiling_gflops"):
                    notes.append(f"matmul ceiling {fmt(rec['ceiling_gflops'])}")
                rows.append((label, value + (f" ({'; '.join(notes)})" if notes else "")))
    return rows


def _ms(x: float | None) -> str:
    return "–" if x is None else fmt(x * 1000)


def _both(median: Any, fastest: Any, f=fmt) -> str:
    """``median (fastest)`` when the fastest-run figure was recorded, else the median alone."""
    return f(median) if fastest is None else f"{f(median)} ({f(fastest)})"


def _ratio(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def _mib(x: int | None) -> str:
    return "–" if x is None else fmt(x / 2**20)


def attention_section(doc: dict, quick: bool, results_dir: Path) -> list[str]:
    """Markdown lines: scaling table per device, summary per configuration, plot link."""
    records = doc["records"]
    timing = [r for r in records if r["figure"] == "attention_time"]
    lines = ["### attention", "", f"{command('attention', quick)} — {provenance(doc)}", ""]
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
