"""One candle Parquet file: its schema, checksums, atomic write, stale temp files and file locks.

The store (``store``) names the files and merges candles; the monthly layout of candles under 1h
(``months``) keeps many of these files per series. Both rely on the guarantees here: a write is a
temp file in the same folder, fsynced, then ``os.replace`` (a reader sees the old file or the new
one, never a torn one); every write stores a SHA-256 of the frame's content in the Parquet
key-value metadata (``cryptocast.sha256``) and Parquet page CRCs, and every read verifies both.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from cryptocast.errors import DataError, LockedError, brief

OHLCV_COLUMNS = ["timestamp", "open", "high", "low", "close", "volume"]
PRICE_COLUMNS = OHLCV_COLUMNS[1:]
TS_DTYPE = "datetime64[ns, UTC]"
CHECKSUM_KEY = b"cryptocast.sha256"
ROT = "restore it from a backup, or move it aside or delete it, then fetch again"
# crash tests only: a path; a writer touches it once its temp file is complete, then waits to be
# killed before the rename (tests/test_store_fine.py kills it with SIGKILL there)
PAUSE_ENV = "CRYPTOCAST_TEST_PAUSE_WRITE"


def check_schema(df: pd.DataFrame, path: Path) -> None:
    """DataError naming ``path`` unless ``df`` has the store's columns, dtypes and order."""
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
    ns = df["timestamp"].array.asi8  # strictly increasing: sorted and unique
    if len(ns) > 1 and not (ns[1:] > ns[:-1]).all():
        raise DataError(
            f"{path} is not sorted by unique timestamps; move it aside or delete it, then fetch again"
        )


def _read_table(path: Path):
    """The Parquet table at ``path`` with its page CRCs verified; DataError naming the file."""
    import pyarrow.parquet as pq

    if path.is_dir():
        raise DataError(f"{path} is a folder, not a candle file; move it out of the store")
    try:
        # ParquetFile, not read_table: no dataset machinery, which dominates for small files
        return pq.ParquetFile(path, page_checksum_verification=True).read()
    except FileNotFoundError:
        raise DataError(f"{path} not found") from None
    except Exception as err:  # pyarrow raises many types for a corrupt file
        reason = brief(err)
        if "checksum" in reason.lower():  # a Parquet page CRC: the bytes changed on disk
            raise DataError(f"{path}: a page fails its checksum ({reason}); {ROT}") from None
        raise DataError(
            f"{path} is unreadable ({reason}); move it aside or delete it, then fetch again"
        ) from None


def _check_digest(stored: bytes | None, digest: str | None, path: Path) -> None:
    if stored is not None and stored.decode(errors="replace") != digest:
        raise DataError(
            f"{path}: the candles do not match the checksum stored with them (the file changed "
            f"on disk since it was written: bit rot or an edit); {ROT}"
        )


def read_candle_file(path: Path) -> pd.DataFrame:
    """Read one candle file, checking schema, page CRCs and the stored SHA-256; DataError naming
    the file if any of them fails."""
    path = Path(path)
    table = _read_table(path)
    try:
        df = table.to_pandas()
    except Exception as err:  # e.g. a timestamp pandas cannot hold
        raise DataError(
            f"{path} is unreadable ({brief(err)}); move it aside or delete it, then fetch again"
        ) from None
    check_schema(df, path)
    _check_digest((table.schema.metadata or {}).get(CHECKSUM_KEY), content_digest(df), path)
    return df


def read_candle_table(path: Path):
    """``read_candle_file`` as a pyarrow Table, with the same checks but without building a
    DataFrame: many month files are concatenated and converted once (``months.read_months``)."""
    import pyarrow as pa

    path = Path(path)
    table = _read_table(path)
    if table.schema.remove_metadata() != _arrow_schema():  # not the usual types: check as pandas
        return pa.Table.from_pandas(read_candle_file(path), preserve_index=False)
    ns = table.column("timestamp").to_numpy().view("int64")
    if len(ns) > 1 and not (ns[1:] > ns[:-1]).all():
        raise DataError(
            f"{path} is not sorted by unique timestamps; move it aside or delete it, then fetch again"
        )
    _check_digest((table.schema.metadata or {}).get(CHECKSUM_KEY), arrow_digest(table), path)
    return table


def _arrow_schema():
    import pyarrow as pa

    fields = [("timestamp", pa.timestamp("ns", tz="UTC"))] + [
        (c, pa.float64()) for c in PRICE_COLUMNS
    ]
    return pa.schema(fields)


def arrow_digest(table) -> str:
    """``content_digest`` of the DataFrame a store-schema pyarrow Table converts to."""
    h = hashlib.sha256()
    for name in OHLCV_COLUMNS:
        values = table.column(name).to_numpy()
        dtype = TS_DTYPE if name == "timestamp" else "float64"
        values = values.view("int64") if name == "timestamp" else values
        h.update(f"{name}\0{dtype}\0{len(values)}\0".encode())
        h.update(np.ascontiguousarray(values).tobytes())
    return h.hexdigest()


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
        if os.environ.get(PAUSE_ENV):
            Path(os.environ[PAUSE_ENV]).touch()
            time.sleep(120)
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
