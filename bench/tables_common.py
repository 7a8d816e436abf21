"""Formatting helpers every part of ``bench/RESULTS.md`` uses (:mod:`bench.tables` and its
section modules :mod:`bench.tables_attention` and :mod:`bench.tables_grid`).

They live below all three so the sections need nothing from :mod:`bench.tables`, which imports
them: no import cycle. The output depends only on the values passed (no clock, no machine lookup).
"""

from __future__ import annotations

from typing import Any


def fmt(value: Any) -> str:
    """Deterministic human formatting: thousands separators, 3 significant digits below 1000."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.3g}"
    return str(value)


def by_figure(records: list[dict], figure: str, **match: Any) -> list[dict]:
    """The records of ``figure`` whose params hold every ``match`` item."""
    return [r for r in records if r["figure"] == figure
            and all(r["params"].get(k) == v for k, v in match.items())]  # fmt: skip


def duration(seconds: float | None, hour_digits: int = 1) -> str:
    """``42 s``, ``3.5 min``, ``1.2 h`` (``–`` for None)."""
    if seconds is None:
        return "–"
    if seconds >= 3600:
        return f"{seconds / 3600:.{hour_digits}f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"


def with_unit(value: Any, unit: str) -> str:
    """A value with its unit: ``30,279 candles/s``, ``L = 1,024``, ``3.66×``."""
    if unit == "L":
        return f"L = {fmt(value)}"
    if unit == "x":
        return f"{fmt(value)}×"
    return f"{fmt(value)} {unit}".rstrip() if unit else fmt(value)


def command(name: str, quick: bool) -> str:
    """The command that produced a benchmark's figures, as Markdown code."""
    return f"`python -m bench.bench_{name}{' --quick' if quick else ''}`"


def provenance(doc: dict) -> str:
    """When and at which commit a results file was written."""
    return f"created {doc['created']}, commit {doc.get('git_commit') or 'unknown'}"
