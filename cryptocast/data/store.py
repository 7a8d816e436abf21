"""The Parquet candle store: one path-naming function, the schema enforced on every write.

Layout: ``data_dir/{kind}/{exchange}/{BASE}-{QUOTE}_{timeframe}.parquet``, except candles of
timeframes under 1h, which live in the folder ``data_dir/ohlcv/{exchange}/{BASE}-{QUOTE}_{tf}/``
as one ``YYYY-MM.parquet`` per UTC month (``months``), so a daily append rewrites one month, not
years. Candles are ``timestamp`` (datetime64[ns, UTC], candle open time) + float64
``open high low close volume``, sorted by time with unique timestamps. Writes are atomic (temp
file in the same folder, fsync, ``os.replace``) and a file lock per data folder keeps two writers
from interleaving. An existing file that cannot be read or has the wrong schema is never
overwritten: the user decides what to do.

Bit rot is caught on read: every write stores a SHA-256 of the frame's content in the Parquet
key-value metadata (``cryptocast.sha256``) and Parquet page CRCs; ``read_ohlcv`` verifies both,
for every month file of a monthly series.
"""

from __future__ import annotations

import contextlib
import os  # noqa: F401 (tests patch store.os.replace, the rename every write ends with)
from pathlib import Path

import pandas as pd

from cryptocast.config.names import check_exchange_name
from cryptocast.config.timeframes import symbol_slug, validate_timeframe
from cryptocast.data.months import append_months, is_monthly, month_files, read_months
from cryptocast.data.parquet_io import (
    CHECKSUM_KEY,
    OHLCV_COLUMNS,
    PRICE_COLUMNS,
    TS_DTYPE,
    content_digest,
    file_lock,
    merge_ohlcv,
    read_candle_file,
    remove_stale_temps,
    write_parquet_atomic,
)
from cryptocast.errors import DataError

__all__ = [  # the store's interface; the file-level pieces live in parquet_io
    "CHECKSUM_KEY", "KINDS", "OHLCV_COLUMNS", "PRICE_COLUMNS", "TS_DTYPE", "append_candles",
    "content_digest", "data_lock", "file_lock", "list_series", "load_series", "merge_ohlcv",
    "read_ohlcv", "remove_stale_temps", "series_exists", "series_path", "store_candles",
    "to_utc_timestamps", "validate_ohlcv", "write_parquet_atomic",
]  # fmt: skip
KINDS = ("ohlcv", "features", "forecasts", "vol_forecasts")


def series_path(
    data_dir: Path, exchange: str, symbol: str, timeframe: str, kind: str = "ohlcv"
) -> Path:
    """Where one series lives: ``data_dir/kind/exchange/BASE-QUOTE_timeframe.parquet``, or for
    candles under 1h the folder ``data_dir/ohlcv/exchange/BASE-QUOTE_timeframe`` of month files."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    check_exchange_name(exchange)
    validate_timeframe(timeframe)
    name = f"{symbol_slug(symbol)}_{timeframe}"
    if kind == "ohlcv" and is_monthly(timeframe):
        return Path(data_dir) / kind / exchange / name
    return Path(data_dir) / kind / exchange / f"{name}.parquet"


def series_exists(path: Path) -> bool:
    """Whether ``series_path`` names stored candles: a file, or a folder with a month file."""
    path = Path(path)
    return path.is_file() or bool(month_files(path))


def list_series(data_dir: Path, kind: str = "ohlcv") -> list[Path]:
    """Every stored series of ``kind`` (``series_path`` of each, one per series), sorted."""
    root = Path(data_dir) / kind
    if not root.is_dir():
        return []
    found = [p for p in root.glob("*/*_*") if p.suffix == ".parquet"]  # read_ohlcv names a bad one
    found += [p for p in root.glob("*/*_*") if p.suffix != ".parquet" and month_files(p)]
    return sorted(found)


def to_utc_timestamps(col: pd.Series, source: str) -> pd.Series:
    """A date/time column as ``datetime64[ns, UTC]``; DataError naming ``source`` otherwise."""
    if pd.api.types.is_numeric_dtype(col):
        raise DataError(f"{source}: timestamp column is numeric; convert epoch values first")
    try:
        return pd.to_datetime(col, utc=True).astype(TS_DTYPE)
    except pd.errors.OutOfBoundsDatetime:
        raise DataError(
            f"{source}: a timestamp is out of range (years 1677-2262 only); fix the file"
        ) from None
    except (ValueError, TypeError) as err:
        reason = " ".join(str(err).split())[:120]
        raise DataError(f"{source}: timestamp column is not a date/time ({reason})") from None


def validate_ohlcv(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """Coerce candles to the store schema: sorted, unique timestamps, float64 prices.

    Duplicate timestamps keep the LAST row (later data wins, the same rule as merging); the
    number dropped is in ``result.attrs["duplicates_dropped"]``.

    Args:
        df: candles with at least the columns of ``OHLCV_COLUMNS`` (extra columns are dropped).
        source: what the data came from (a file name, ``BTC/USDT 1h from binance``), for errors.

    Raises:
        DataError: naming ``source`` when columns are missing, values are not numeric, or a row
            has a missing value.
    """
    missing = [c for c in OHLCV_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {', '.join(missing)}; expected {', '.join(OHLCV_COLUMNS)}"
        )
    out = pd.DataFrame({"timestamp": to_utc_timestamps(df["timestamp"], source)})
    for c in PRICE_COLUMNS:
        try:
            out[c] = pd.to_numeric(df[c].to_numpy(), errors="raise").astype("float64")
        except (ValueError, TypeError):
            raise DataError(f"{source}: column {c} has non-numeric values") from None
    bad = int(out.isna().any(axis=1).sum())
    if bad:
        raise DataError(f"{source}: {bad} row(s) with missing values; clean the file and retry")
    n = len(out)
    out = out.sort_values("timestamp", kind="stable")
    out = out.drop_duplicates("timestamp", keep="last").reset_index(drop=True)
    out.attrs["duplicates_dropped"] = n - len(out)
    return out


def read_ohlcv(path: Path) -> pd.DataFrame:
    """Read a stored series (a candle file, or a folder of month files), checking the schema and
    checksums of every file. DataError naming the bad file."""
    path = Path(path)
    if path.is_dir() and path.suffix != ".parquet":  # a monthly series
        if not month_files(path):
            raise DataError(f"{path} is a folder with no YYYY-MM.parquet candle files")
        return read_months(path)
    return read_candle_file(path)


def load_series(data_dir: Path, exchange: str, symbol: str, timeframe: str) -> pd.DataFrame:
    """Stored candles of one series; DataError saying which fetch to run when there are none."""
    from cryptocast.data.hints import fetch_command, stored_exchanges

    path = series_path(data_dir, exchange, symbol, timeframe)
    if not series_exists(path):
        others = [e for e in stored_exchanges(data_dir) if e != exchange]
        elsewhere = f" (candles are stored for {', '.join(others)})" if others else ""
        raise DataError(
            f"no candles stored for {symbol} {timeframe} in {path.parent}{elsewhere}; "
            f"run {fetch_command(exchange, symbol, timeframe, data_dir)}"
        )
    return read_ohlcv(path)


def append_candles(
    data_dir: Path, exchange: str, symbol: str, timeframe: str, new: pd.DataFrame
) -> tuple[int, list[Path]]:
    """Merge validated ``new`` candles into the stored series, rewriting only what changes.

    Call under ``data_lock``. A single-file series is read, merged and rewritten whole; a monthly
    one (timeframes under 1h) only in the months ``new`` touches. Temp files that crashed writers
    left behind are removed first. Returns the overlap de-duplicated and the files written.
    """
    path = series_path(data_dir, exchange, symbol, timeframe)
    remove_stale_temps(path.parent)
    if path.suffix == ".parquet":
        _, dupes, written = _store_single(path, new)
        return dupes, written
    if path.is_file():
        raise DataError(
            f"{path} is a file, but {timeframe} candles are stored as a folder of month "
            "files; move it aside, then import it with `cryptocast fetch --import`"
        )
    remove_stale_temps(path)
    return append_months(path, new)


def store_candles(
    data_dir: Path, exchange: str, symbol: str, timeframe: str, new: pd.DataFrame
) -> tuple[pd.DataFrame, int]:
    """``append_candles``, then the whole stored series: (merged series, overlap de-duplicated).

    Call under ``data_lock``. A caller that appends repeatedly (fetch) uses ``append_candles``
    and keeps the series in memory, so a monthly series is not read back after every append.
    """
    path = series_path(data_dir, exchange, symbol, timeframe)
    if path.suffix == ".parquet":
        remove_stale_temps(path.parent)
        merged, dupes, _ = _store_single(path, new)
        return merged, dupes
    dupes, _ = append_candles(data_dir, exchange, symbol, timeframe, new)
    return (read_months(path) if month_files(path) else new.reset_index(drop=True)), dupes


def _store_single(path: Path, new: pd.DataFrame) -> tuple[pd.DataFrame, int, list[Path]]:
    old = read_candle_file(path) if path.exists() else None
    merged, dupes = merge_ohlcv(old, new)
    if old is None or len(merged) != len(old) or not merged.equals(old):
        write_parquet_atomic(merged, path)
        return merged, dupes, [path]
    return merged, dupes, []


def data_lock(data_dir: Path, timeout: float = 30.0) -> contextlib.AbstractContextManager[None]:
    """Hold the data folder's lock (``data_dir/.lock``); LockedError after ``timeout`` seconds."""
    lock_path = Path(data_dir) / ".lock"
    return file_lock(
        lock_path,
        timeout,
        f"another cryptocast process is writing to {data_dir} (lock {lock_path}); "
        "wait for it to finish or retry",
    )
