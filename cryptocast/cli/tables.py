"""Tables that read at 80 columns: the full table when it fits the terminal, else a compact one.

Piped or captured output (cron mail, CI logs) is printed at least 160 columns wide, so it keeps
the full table; a terminal narrower than the full table gets the compact variant (fewer, short
columns) instead of rich squeezing every cell to ``643…``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.measure import Measurement

PIPED_WIDTH = 160


def fits(console: Console, table: Any) -> bool:
    """Whether ``table`` renders at its natural width within ``console``."""
    # measured without the console's limit: rich clamps a measurement to the width it is given
    unlimited = console.options.update(width=10_000, max_width=10_000)
    return Measurement.get(console, unlimited, table).maximum <= console.width


def print_table(console: Console, full: Any, compact: Callable[[], Any] | None = None) -> None:
    """Print ``full`` if it fits (or output is piped), else ``compact()``."""
    if not console.is_terminal:
        saved = console.width
        console.width = max(saved, PIPED_WIDTH)
        try:
            console.print(full)
        finally:
            console.width = saved
        return
    if compact is None or fits(console, full):
        console.print(full)
    else:
        console.print(compact())
