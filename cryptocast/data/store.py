"""The Parquet candle store: one path-naming function, the schema enforced on every write.

Layout: ``data_dir/{kind}/{exchange}/{BASE}-{QUOTE}_{timeframe}.parquet``. Candles are
``timestamp`` (datetime64[ns, UTC], candle open time) + float64 ``open high low close volume``,
sorted by time with unique timestamps. Writes are atomic (temp file in the same folder, fsync,
``os.replace``) and a file lock per data folder keeps two writers from interleaving. An existing file
that cannot be read or has the wrong schema is never overwritten: the user decides what to do.

Bit rot is caught on read: every write stores a SHA-256 of the frame's content in the Parquet
key-value metadata (``cryptocast.sha256``) and Parquet page CRCs; ``read_ohlcv`` verifies both.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from cryptocast.config.names import check_exchange_name
from cryptocast.config.timeframes import symbol_slug, validate_timeframe
from cryptocast.errors import DataError, LockedError, brief

OHLCV_COLUMNS = ["timestamp", "open", "high", "low", "close", "volume"]
PRICE_COLUMNS = OHLCV_COLUMNS[1:]
KINDS = ("ohlcv", "features", "forecasts", "vol_forecasts")
TS_DTYPE = "datetime64[ns, UTC]"
CHECKSUM_KEY = b"cryptocast.sha256"
_ROT = "restore it from a backup, or move it aside or delete it, then fetch again"


def series_path(
    data_dir: Path, exchange: str, symbol: str, timeframe: str, kind: str = "ohlcv"
) -> Path:
    """Where one series lives: ``data_dir/kind/exchange/BASE-QUOTE_timeframe.parquet``."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    check_exchange_name(exchange)
    validate_timeframe(timeframe)
    return Path(data_dir) / kind / exchange / f"{symbol_slug(symbol)}_{timeframe}.parquet"


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


def _check_schema(df: pd.DataFrame, path: Path) -> None:
    if list(df.columns) != OHLCV_COLUMNS:
        raise DataError(
            f"{path} has columns {list(df.columns)}, not {OHLCV_COLUMNS}; "
            "move it aside or delete it, then fetch again"
        )
    if str(df["timestamp"].dtype) != TS_DTYPE or any(
        df[c].dtype != np.float64 for c in PRICE_COLUMNS
    ):
        raise DataError(
            f"{path} has the wrong column types (want timestamp {TS_DTYPE}, prices float64); "
            "move it aside or delete it, then fetch again"
        )
    ts = df["timestamp"]
    if not ts.is_monotonic_increasing or ts.duplicated().any():
        raise DataError(
            f"{path} is not sorted by unique timestamps; move it aside or delete it, then fetch again"
        )


def read_ohlcv(path: Path) -> pd.DataFrame:
    """Read a stored candle file, checking the schema. DataError naming the file if it is bad."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a candle file; move it out of the store")
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path, page_checksum_verification=True)
        df = table.to_pandas()
    except FileNotFoundError:
        raise DataError(f"{path} not found") from None
    except Exception as err:  # pyarrow raises many types for a corrupt file
        reason = brief(err)
        if "checksum" in reason.lower():  # a Parquet page CRC: the bytes changed on disk
            raise DataError(f"{path}: a page fails its checksum ({reason}); {_ROT}") from None
        raise DataError(
            f"{path} is unreadable ({reason}); move it aside or delete it, then fetch again"
        ) from None
    _check_schema(df, path)
    stored = (table.schema.metadata or {}).get(CHECKSUM_KEY)
    if stored is not None and stored.decode(errors="replace") != content_digest(df):
        raise DataError(
            f"{path}: the candles do not match the checksum stored with them (the file changed "
            f"on disk since it was written: bit rot or an edit); {_ROT}"
        )
    return df


def content_digest(df: pd.DataFrame) -> str | None:
    """SHA-256 of a frame's column names, dtypes and values; None when a column is not numeric
    or a date/time (only those have one exact byte form)."""
    h = hashlib.sha256()
    for name in df.columns:
        col = df[name]
        if isinstance(col.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(col):
            values = col.astype("int64").to_numpy()
        elif pd.api.types.is_numeric_dtype(col):
            values = col.to_numpy()
        else:
            return None
        if values.dtype == object:  # e.g. a nullable Int64 with NA: no fixed byte form
            return None
        h.update(f"{name}\0{col.dtype}\0{len(values)}\0".encode())
        h.update(np.ascontiguousarray(values).tobytes())
    return h.hexdigest()


def load_series(data_dir: Path, exchange: str, symbol: str, timeframe: str) -> pd.DataFrame:
    """Stored candles of one series; DataError saying which fetch to run when there are none."""
    from cryptocast.data.hints import fetch_command, stored_exchanges

    path = series_path(data_dir, exchange, symbol, timeframe)
    if not path.is_file():
        others = [e for e in stored_exchanges(data_dir) if e != exchange]
        elsewhere = f" (candles are stored for {', '.join(others)})" if others else ""
        raise DataError(
            f"no candles stored for {symbol} {timeframe} in {path.parent}{elsewhere}; "
            f"run {fetch_command(exchange, symbol, timeframe, data_dir)}"
        )
    return read_ohlcv(path)


def merge_ohlcv(old: pd.DataFrame | None, new: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Merge two validated frames; on equal timestamps the NEW candle wins.

    Returns the merged frame and the number of overlapping (de-duplicated) candles.
    """
    if old is None or old.empty:
        return new.reset_index(drop=True), 0
    if new.empty:
        return old.reset_index(drop=True), 0
    both = pd.concat([old, new], ignore_index=True)
    both = both.sort_values("timestamp", kind="stable")
    merged = both.drop_duplicates("timestamp", keep="last").reset_index(drop=True)
    return merged, len(both) - len(merged)


def write_parquet_atomic(df: pd.DataFrame, path: Path) -> None:
    """Write ``df`` to ``path`` so a reader sees either the old file or the complete new one.

    The temp file sits in the same folder (``os.replace`` is atomic only within a filesystem); it is
    fsynced before the rename and the folder after it, so a crash cannot leave a torn file. The
    file carries Parquet page CRCs and, for numeric frames, ``content_digest`` in its metadata.
    An OSError (disk full) names ``path``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    table = pa.Table.from_pandas(df, preserve_index=False)
    digest = content_digest(df)
    if digest is not None:
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), CHECKSUM_KEY: digest.encode()}
        )
    try:
        pq.write_table(table, tmp, compression="zstd", write_page_checksum=True)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as err:
        if err.filename is None:  # pyarrow's and fsync's errors carry no path: name the file
            raise OSError(err.errno, err.strerror or brief(err), str(path)) from err
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    with contextlib.suppress(OSError):  # not every platform can fsync a directory
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


_TMP_RE = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.tmp")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete ``.NAME.PID.tmp`` files whose writer process is gone; return what was removed.

    Call under the data lock. A temp file whose pid is alive (this process or another writer) is
    left alone: only a crash (kill -9, power loss) leaves one behind with a dead pid.
    """
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for tmp in folder.glob(".*.tmp"):
        m = _TMP_RE.fullmatch(tmp.name)
        if m is None or not tmp.is_file() or _pid_alive(int(m["pid"])):
            continue
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
            removed.append(tmp)
    return removed


def store_candles(
    data_dir: Path, exchange: str, symbol: str, timeframe: str, new: pd.DataFrame
) -> tuple[pd.DataFrame, int]:
    """Merge validated ``new`` candles into the stored series and write it atomically.

    Call under ``data_lock``. Returns the merged series and the overlap de-duplicated. Temp files
    that crashed writers left in the series' folder are removed first.
    """
    path = series_path(data_dir, exchange, symbol, timeframe)
    remove_stale_temps(path.parent)
    old = read_ohlcv(path) if path.exists() else None
    merged, dupes = merge_ohlcv(old, new)
    if old is None or len(merged) != len(old) or not merged.equals(old):
        write_parquet_atomic(merged, path)
    return merged, dupes


@contextlib.contextmanager
def file_lock(lock_path: Path, timeout: float, busy: str) -> Iterator[None]:
    """Hold the lock file ``lock_path``; LockedError(``busy``) after ``timeout`` seconds."""
    from filelock import FileLock, Timeout

    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path))
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise LockedError(busy) from None
    try:
        yield
    finally:
        lock.release()


def data_lock(data_dir: Path, timeout: float = 30.0) -> contextlib.AbstractContextManager[None]:
    """Hold the data folder's lock (``data_dir/.lock``); LockedError after ``timeout`` seconds."""
    lock_path = Path(data_dir) / ".lock"
    return file_lock(
        lock_path,
        timeout,
        f"another cryptocast process is writing to {data_dir} (lock {lock_path}); "
        "wait for it to finish or retry",
    )
