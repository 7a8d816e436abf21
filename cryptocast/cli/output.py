"""``--format table|csv|json``: the result tables for people, or the same rows for scripts.

``table`` is the rich table (sized by ``cli.tables``). ``csv`` and ``json`` print the rows the
table shows, one record per row, with the table's machine names (``rows``, ``first``, ...) and
raw values (ISO timestamps, full-precision numbers, empty/``null`` for a missing value), so a
script reads back exactly what a person sees. In those formats stdout holds only the records:
headers, progress and notes go to stderr.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from cryptocast.cli.tables import CliConsole
from cryptocast.errors import ConfigError

FORMATS = ("table", "csv", "json")

FormatOpt = Annotated[
    str,
    typer.Option(
        "--format",
        help="Output format: table (for people), csv or json (the table's rows, for scripts; "
        "everything else goes to stderr).",
    ),
]


def use_format(fmt: str, console: Console) -> str:
    """Check ``fmt`` (a one-line ConfigError, exit 2, unless one of ``FORMATS``); with a machine
    format, send what ``console`` prints to stderr until the command ends, so stdout carries only
    the records."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    if isinstance(console, CliConsole):
        console.to_stderr = fmt != "table"  # app's callback resets it for every command
    return fmt


def _plain(v: Any) -> Any:
    """A JSON/CSV-safe scalar: ISO timestamps, Python numbers, None for NaN/inf."""
    if v is None or isinstance(v, (str, bool)):
        return v
    if hasattr(v, "isoformat") and isinstance(v, (dt.datetime, dt.date)):
        return v.isoformat()
    if isinstance(v, Path):
        return str(v)
    if hasattr(v, "item") and not isinstance(v, (list, dict)):  # numpy scalars
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def records(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> list[dict[str, Any]]:
    """``rows`` cut to ``columns`` (in that order; a missing value is None), as plain values."""
    return [{c: _plain(r.get(c)) for c in columns} for r in rows]


def emit(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: str) -> None:
    """Print ``rows`` (their ``columns``) to stdout as CSV (a header line, then one line per
    row; empty = missing) or JSON (a list of objects; null = missing)."""
    out = records(rows, columns)
    if fmt == "json":
        typer.echo(json.dumps(out, indent=2, allow_nan=False))
        return
    if fmt != "csv":
        raise ValueError(f"emit() prints csv or json, not {fmt!r}")
    writer = csv.DictWriter(sys.stdout, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for rec in out:
        writer.writerow({k: "" if v is None else v for k, v in rec.items()})
    sys.stdout.flush()
