"""Tables that read at the width they are given: the full table when it fits, else a compact one.

On a terminal the width is the terminal's. Piped or captured output (``| cat``, cron mail, CI
logs) is sized to ``$COLUMNS`` (80 when unset or not a number) and printed without trailing
padding, so a script or a mail reader gets lines no longer than that. A table wider than the
width gets the compact variant (fewer, short columns) instead of rich squeezing every cell to
``643…``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import IO, Any

from rich.console import Console, ConsoleDimensions
from rich.measure import Measurement

PIPED_WIDTH = 80  # piped output without a usable $COLUMNS


def piped_width() -> int:
    """``$COLUMNS`` when it is a positive number, else ``PIPED_WIDTH``."""
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else PIPED_WIDTH


class CliConsole(Console):
    """A console whose piped width is ``piped_width()``, read at every print.

    rich would take the width of whatever terminal stdin or stderr is attached to (``cmd | cat``
    in a 200-column terminal prints 200-column lines), and fixes ``$COLUMNS`` when the console is
    created; the commands' console lives as long as the process, tests included.
    """

    def __init__(self, **kwargs: Any) -> None:
        # --format csv|json: stdout carries only the records; what else is printed goes to stderr
        self.to_stderr = False
        self._plain = False  # inside print's own capture
        super().__init__(**kwargs)
        self._fixed_width = kwargs.get("width") is not None

    @property
    def file(self) -> IO[str]:
        return sys.stderr if self.to_stderr else super().file

    @file.setter
    def file(self, new_file: IO[str]) -> None:
        Console.file.fset(self, new_file)  # type: ignore[attr-defined]

    def print(self, *objects: Any, **kwargs: Any) -> None:
        """rich's print; piped, without the trailing spaces rich leaves where it wraps a line or
        pads a title or a cell."""
        if self.is_terminal or self._plain:
            super().print(*objects, **kwargs)
            return
        self._plain = True
        try:
            with self.capture() as captured:
                super().print(*objects, **kwargs)
        finally:
            self._plain = False
        self.file.write("\n".join(line.rstrip() for line in captured.get().split("\n")))
        self.file.flush()

    @property
    def size(self) -> ConsoleDimensions:
        dims = super().size
        if self._fixed_width or self.is_terminal:
            return dims
        return ConsoleDimensions(piped_width(), dims.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]


def fits(console: Console, table: Any) -> bool:
    """Whether ``table`` renders at its natural width within ``console``."""
    # measured without the console's limit: rich clamps a measurement to the width it is given
    unlimited = console.options.update(width=10_000, max_width=10_000)
    return Measurement.get(console, unlimited, table).maximum <= console.width


def print_table(console: Console, full: Any, compact: Callable[[], Any] | None = None) -> None:
    """Print ``full`` if it fits the console's width, else ``compact()`` (or ``full`` squeezed)."""
    console.print(full if compact is None or fits(console, full) else compact())
