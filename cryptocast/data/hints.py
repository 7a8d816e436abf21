"""The commands error messages tell the user to run next, spelled so that they work when pasted.

A hint carries every choice the user made (exchange, symbol, timeframe, data folder), quoted for
a POSIX shell: ``--exchange binanse`` must not turn into a hint that fetches from binance into
another folder.
"""

from __future__ import annotations

import shlex
from pathlib import Path

DEFAULT_DATA_DIR = Path("data")  # the CLI's --data-dir default: left out of hints


def fetch_command(
    exchange: str, symbol: str, timeframe: str, data_dir: Path | str | None = None
) -> str:
    """```cryptocast fetch --symbol S --timeframe T --exchange E [--data-dir D]``` in backticks."""
    args = ["cryptocast", "fetch", "--symbol", symbol, "--timeframe", timeframe]
    args += ["--exchange", exchange]
    if data_dir is not None and Path(data_dir) != DEFAULT_DATA_DIR:
        args += ["--data-dir", str(data_dir)]
    return f"`{shlex.join(args)}`"


def stored_exchanges(data_dir: Path | str, kind: str = "ohlcv") -> list[str]:
    """The exchange folders that hold files of ``kind``, for a hint after a likely typo."""
    root = Path(data_dir) / kind
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
