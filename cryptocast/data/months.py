"""The monthly layout of candles under 1h: one Parquet file per UTC month in the series' folder.

A 5-minute series holds ~105,000 candles a year (1-minute: 525,600), so rewriting one file per
append would make a daily cron's cost grow with the whole history. Here a series is the folder
``BASE-QUOTE_tf/`` holding ``YYYY-MM.parquet`` files (candle open times in that UTC month); an
append rewrites only the months it touches. Every month file is an ordinary candle file
(``parquet_io``): the same schema, atomic write, page CRCs and SHA-256. An append touching several
months replaces them one at a time in time order, so a crash between two leaves each file whole and
the series a consistent prefix of the new candles: nothing stored is lost, and the next fetch
resumes after the last stored candle. ``bench/bench_store.py`` measures the gain.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from cryptocast.config.timeframes import timeframe_ms
from cryptocast.data.parquet_io import (
    OHLCV_COLUMNS,
    TS_DTYPE,
    check_schema,
    merge_ohlcv,
    read_candle_file,
    read_candle_table,
    write_parquet_atomic,
)
from cryptocast.errors import DataError

MONTHLY_BELOW_MS = 3_600_000  # timeframes shorter than 1h are stored one file per month
_MONTH_RE = re.compile(r"(?P<month>\d{4}-\d{2})\.parquet")


def is_monthly(timeframe: str) -> bool:
    """Whether ``timeframe``'s candles are stored one file per month (shorter than 1h)."""
    return timeframe_ms(timeframe) < MONTHLY_BELOW_MS


def month_files(folder: Path) -> list[Path]:
    """The ``YYYY-MM.parquet`` files of a monthly series folder, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _MONTH_RE.fullmatch(p.name) and p.is_file())


def _months_of(ts: pd.Series) -> np.ndarray:
    """``YYYY-MM`` month of each UTC timestamp, as ``datetime64[M]``."""
    return ts.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[M]")


def _check_month(ns: np.ndarray, path: Path) -> None:
    """DataError unless the candles (sorted epoch ns) open in the month ``path`` names."""
    month = np.datetime64(_MONTH_RE.fullmatch(path.name)["month"], "M")
    ends = ns[[0, -1]].astype("datetime64[ns]").astype("datetime64[M]") if len(ns) else ns
    if (ends != month).any():
        raise DataError(
            f"{path} holds candles outside {month}; move it aside or delete it, then fetch again"
        )


def _read_month(path: Path) -> pd.DataFrame:
    df = read_candle_file(path)
    _check_month(df["timestamp"].array.asi8, path)
    return df


def empty_frame() -> pd.DataFrame:
    """No candles, in the store schema."""
    df = pd.DataFrame({c: pd.Series(dtype="float64") for c in OHLCV_COLUMNS})
    df["timestamp"] = pd.Series(dtype=TS_DTYPE)
    return df


def read_months(folder: Path) -> pd.DataFrame:
    """Every candle of a monthly series, in time order; DataError naming a bad month file.

    Each file is checked as ``read_candle_file`` does (page CRCs, schema, SHA-256); the tables are
    concatenated and converted to pandas once, which keeps 18 months about as cheap as one file.
    """
    import pyarrow as pa

    tables = []
    for path in month_files(folder):
        table = read_candle_table(path)
        _check_month(table.column("timestamp").to_numpy().view("int64"), path)
        tables.append(table.replace_schema_metadata(None))
    if not tables:
        return empty_frame()
    df = pa.concat_tables(tables).to_pandas()
    check_schema(df, Path(folder))  # sorted and unique across the months too
    return df


def append_months(folder: Path, new: pd.DataFrame) -> tuple[int, list[Path]]:
    """Merge validated ``new`` candles into the month files they fall in (new wins on overlap).

    Every touched month is read first, so a damaged one stops the append before any write; a month
    whose candles do not change is not rewritten. Call under the data lock.

    Returns:
        The overlap de-duplicated, and the month files written.
    """
    folder = Path(folder)
    if new.empty:
        return 0, []
    keys = _months_of(new["timestamp"])  # sorted, since new is
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    bounds = [*starts.tolist(), len(new)]
    plan = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=False):
        path = folder / f"{keys[a]}.parquet"
        old = _read_month(path) if path.exists() else None
        plan.append((path, old, new.iloc[a:b]))
    dupes, written = 0, []
    for path, old, part in plan:
        merged, d = merge_ohlcv(old, part.reset_index(drop=True))
        dupes += d
        if old is None or len(merged) != len(old) or not merged.equals(old):
            merged.attrs = {}  # the file's bytes depend on its candles only
            write_parquet_atomic(merged, path)
            written.append(path)
    return dupes, written
