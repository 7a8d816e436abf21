"""Timeframe strings ("1m", "15m", "1h", "4h", "1d", "1w") and their durations.

The one parser every command uses: a timeframe is one of ``SUPPORTED``, spelled as exchanges
spell it, so a value ``features`` or ``train`` accepts is one ``fetch`` can download and names
the same file. Another spelling of a supported duration (``60m``, ``24h``) is refused with the
canonical one rather than normalised, since it would otherwise name a different file.
"""

from __future__ import annotations

import re

import pandas as pd

from cryptocast.config.names import symbol_slug
from cryptocast.errors import ConfigError

__all__ = ["symbol_slug"]  # re-exported: the slug is named with the timeframe in file names

_UNITS = {"m": "min", "h": "h", "d": "D", "w": "W"}
_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_RE = re.compile(r"^(\d+)([mhdw])$")
SUPPORTED = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w")


def _parse(timeframe: str) -> tuple[int, str]:
    m = _RE.match(timeframe) if isinstance(timeframe, str) else None
    if m and timeframe in SUPPORTED:
        return int(m.group(1)), m.group(2)
    valid = f"use one of {', '.join(SUPPORTED)}"
    if m:
        ms = int(m.group(1)) * _MS[m.group(2)]
        same = [tf for tf in SUPPORTED if int(tf[:-1]) * _MS[tf[-1]] == ms]
        if same:
            raise ConfigError(f"unknown timeframe {timeframe!r}; write it as {same[0]} ({valid})")
    shown = repr(timeframe[:40]) if isinstance(timeframe, str) else repr(timeframe)
    raise ConfigError(f"unknown timeframe {shown}; {valid}")


def validate_timeframe(timeframe: str) -> str:
    """Return ``timeframe`` if it is well formed, else raise ConfigError listing valid ones."""
    _parse(timeframe)
    return timeframe


def timeframe_ms(timeframe: str) -> int:
    n, unit = _parse(timeframe)
    return n * _MS[unit]


def timeframe_delta(timeframe: str) -> pd.Timedelta:
    return pd.Timedelta(milliseconds=timeframe_ms(timeframe))


def periods_per_year(timeframe: str) -> float:
    """Candles per year for a market that trades around the clock (crypto): 365 days."""
    return 365 * 86_400_000 / timeframe_ms(timeframe)


def human_duration(delta: pd.Timedelta) -> str:
    """``2h 24min``, ``3d 0h 5min``, ``14d``, ``6min``: a duration as people write it (to the minute).

    Units from the largest non-zero one down to the last non-zero one; a negative duration gets a
    leading ``-``.
    """
    delta = pd.Timedelta(delta)
    minutes = int(abs(delta).total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (mins, "min")]
    while parts and parts[0][0] == 0:
        parts.pop(0)
    while parts and parts[-1][0] == 0:
        parts.pop()
    text = " ".join(f"{n}{unit}" for n, unit in parts) or "0min"
    return f"-{text}" if delta < pd.Timedelta(0) and text != "0min" else text
