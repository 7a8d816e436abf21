"""Rules an imported candle file must meet before anything is written, and the overwrite guard.

Every rule names the file, the row (the 1-based data row in the file's own order, header lines
not counted) and the rule, so the user can fix the file:

- prices are numbers, finite and positive; volume is a finite number >= 0; nothing is missing;
- each row is consistent: low <= high and open, close within [low, high];
- open times lie after 2009-01-01 (before any crypto exchange) and every candle has closed by
  ``now`` (open time + one period <= now; ``now`` follows ``$CRYPTOCAST_NOW``), since a candle
  exported while still open has a wrong close, high and low that a later fetch never revisits;
- open times sit on the timeframe's grid (multiples of the period since the epoch; weeks start on
  Monday), and not all of them a multiple of a longer period apart (daily candles in an hourly
  file: the file's own spacing says which timeframe it holds);
- epoch numbers whose unit was guessed from their magnitude (s, ms or µs) must be spaced by
  multiples of the timeframe, or the guess is refused;
- rows repeating an open time must repeat its values too.

An import that would change stored candles is refused unless the caller allows overwriting.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cryptocast.config.dates import now_utc
from cryptocast.config.timeframes import SUPPORTED, timeframe_ms
from cryptocast.errors import DataError

PRICES = ("open", "high", "low", "close")
EARLIEST = pd.Timestamp("2009-01-01", tz="UTC")
_WEEK_ORIGIN_MS = 4 * 86_400_000  # 1970-01-05 was a Monday; Binance weeks open on Monday 00:00


def _row(df: pd.DataFrame, mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0]) + 1


def check_values(df: pd.DataFrame, raw: pd.DataFrame | None, source: Path | str) -> None:
    """Price and volume rules. ``raw``: the columns as read (text), to tell text from blanks.

    Raises:
        DataError: ``FILE: row N: RULE``.
    """
    for c in (*PRICES, "volume"):
        v = df[c].to_numpy(dtype="float64")
        missing = np.isnan(v)
        if missing.any():
            row = _row(df, missing)
            if raw is not None and c in raw.columns:
                text = raw[c].iloc[row - 1]
                if not pd.isna(text) and str(text).strip():
                    raise DataError(f"{source}: row {row}: {c} {str(text)[:40]!r} is not a number")
            raise DataError(f"{source}: row {row}: {c} is missing")
        if not np.isfinite(v).all():
            row = _row(df, ~np.isfinite(v))
            raise DataError(f"{source}: row {row}: {c} {v[row - 1]} is not a finite number")
        bad = v < 0 if c == "volume" else v <= 0
        if bad.any():
            row = _row(df, bad)
            rule = "negative" if c == "volume" else "not positive"
            raise DataError(f"{source}: row {row}: {c} {v[row - 1]:g} is {rule}")
    check_consistent(df, source)


def check_consistent(df: pd.DataFrame, source: Path | str) -> None:
    """low <= high, and open and close within [low, high], on every row.

    Raises:
        DataError: ``FILE: row N: RULE`` for the first row breaking a rule.
    """
    o, h, lo, c = (df[k].to_numpy(dtype="float64") for k in PRICES)
    rules = [(h < lo, lambda i: f"high {h[i]:g} is below low {lo[i]:g}")]
    for name, v in (("open", o), ("close", c)):
        rules.append(
            ((v < lo) | (v > h), lambda i, n=name, v=v: f"{n} {v[i]:g} is outside "
             f"[low {lo[i]:g}, high {h[i]:g}]")
        )  # fmt: skip
    for mask, rule in rules:
        if mask.any():
            row = _row(df, mask)
            raise DataError(
                f"{source}: row {row}: {rule(row - 1)}; the row is inconsistent: fix or drop it"
            )


def check_times(
    df: pd.DataFrame,
    source: Path | str,
    timeframe: str,
    now: pd.Timestamp | None = None,
    guessed_unit: str | None = None,
) -> None:
    """Open-time rules: window, grid, unit guess, repeated open times with other values.

    Raises:
        DataError: ``FILE: row N: RULE``.
    """
    ts = df["timestamp"]
    if ts.isna().any():
        raise DataError(f"{source}: row {_row(df, ts.isna().to_numpy())}: open time is missing")
    period = timeframe_ms(timeframe)
    now = now_utc(now)
    ms = ts.astype("int64").to_numpy() // 1_000_000
    if guessed_unit is not None and len(ms) > 1:
        steps = np.diff(np.unique(ms))
        if len(steps) and (steps.min() < period or (steps % period).any()):
            step = int(steps[np.argmax((steps < period) | (steps % period != 0))])
            raise DataError(
                f"{source}: open times read as {guessed_unit} (by their size) lie "
                f"{pd.Timedelta(milliseconds=step)} apart, not a multiple of {timeframe}; the "
                "time unit is ambiguous: write the open time in ms"
            )
    early = (ts < EARLIEST).to_numpy()
    if early.any():
        row = _row(df, early)
        raise DataError(
            f"{source}: row {row}: open time {ts.iloc[row - 1]} is before {EARLIEST:%Y-%m-%d}"
        )
    closes = ts + pd.Timedelta(milliseconds=period)
    open_ = (closes > now).to_numpy()
    if open_.any():
        row = _row(df, open_)
        t = ts.iloc[row - 1]
        if t > now:
            raise DataError(f"{source}: row {row}: open time {t} is in the future (now {now})")
        raise DataError(
            f"{source}: row {row}: the candle opening {t} is not closed until "
            f"{closes.iloc[row - 1]} (now {now:%Y-%m-%d %H:%M}): its close, high and low are not "
            "final; drop the row or export the file after the candle closes"
        )
    origin = _WEEK_ORIGIN_MS if timeframe.endswith("w") else 0
    if timeframe.endswith(("m", "h", "w")) or timeframe == "1d":
        off = (ms - origin) % period != 0
        if off.any():
            row = _row(df, off)
            raise DataError(
                f"{source}: row {row}: open time {ts.iloc[row - 1]} is not on the {timeframe} grid "
                "(candles open at whole periods)"
            )
    check_spacing(ms, source, timeframe)
    dup = ts.duplicated(keep=False).to_numpy()
    if dup.any():
        cols = ["timestamp", *PRICES, "volume"]
        clash = df.loc[dup, cols].drop_duplicates()
        clash = clash[clash["timestamp"].duplicated(keep=False)]
        if len(clash):
            rows = [int(i) + 1 for i in df.index[df["timestamp"] == clash["timestamp"].iloc[0]]]
            raise DataError(
                f"{source}: rows {rows[0]} and {rows[1]} share open time "
                f"{clash['timestamp'].iloc[0]} with different values; keep one of them"
            )


def changed_candles(old: pd.DataFrame | None, new: pd.DataFrame) -> tuple[int, str]:
    """How many stored candles ``new`` would change, and a description of the first one."""
    if old is None or old.empty or new.empty:
        return 0, ""
    both = old.merge(new, on="timestamp", suffixes=("_old", ""))
    diff = np.zeros(len(both), dtype=bool)
    for c in (*PRICES, "volume"):
        diff |= both[f"{c}_old"].to_numpy() != both[c].to_numpy()
    if not diff.any():
        return 0, ""
    i = int(np.flatnonzero(diff)[0])
    first = both.iloc[i]
    cols = [c for c in (*PRICES, "volume") if first[f"{c}_old"] != first[c]]
    what = ", ".join(f"{c} {first[f'{c}_old']:g} -> {first[c]:g}" for c in cols[:2])
    return int(diff.sum()), f"first {first['timestamp']}: {what}"


def check_spacing(ms: np.ndarray, source: Path | str, timeframe: str) -> None:
    """Refuse a file whose open times (ms) are all a multiple of a longer period apart.

    Three or more candles none of which are one period apart, spaced by multiples of a longer
    period (every step a multiple of 24h in a ``1h`` file), are candles of that longer timeframe:
    stored as ``timeframe`` they would read as gaps plus candles with ~24x the volume.

    Raises:
        DataError: naming the spacing and the timeframe it suggests.
    """
    period = timeframe_ms(timeframe)
    steps = np.diff(np.unique(ms))
    if len(steps) < 2 or steps.min() <= period:
        return
    spacing = int(np.gcd.reduce(steps))
    if spacing <= period or spacing % period:
        return
    named = [tf for tf in SUPPORTED if timeframe_ms(tf) == spacing]
    label = named[0] if named else str(pd.Timedelta(milliseconds=spacing))
    hint = f"import them with --timeframe {label}" if named else "check the file"
    raise DataError(
        f"{source}: open times are all a multiple of {label} apart (no two {timeframe} apart): "
        f"these look like {label} candles, not {timeframe} candles; {hint}"
    )
