"""Parse candle files a user already has into store columns; bounded so no input can exhaust memory.

Formats (detected from the file name and its first bytes):

- Parquet in the store schema: ``BASE-QUOTE_tf.parquet`` (a file or a folder of them).
- freqtrade caches: ``BASE_QUOTE-tf.feather`` (columns date, open, high, low, close, volume) and
  ``BASE_QUOTE-tf.json`` (a list of ``[ms, open, high, low, close, volume]``).
- cryptodatadownload CSV (``Binance_BTCUSDT_1h.csv``): a URL banner line, then
  ``unix,date,symbol,open,high,low,close,Volume BTC,...``, newest first; ``unix`` in ms or s.
- Binance public-data klines (``BTCUSDT-1h-2023-01.csv`` or ``.zip``): no header, 12 columns,
  open time in ms (µs in files from 2025 on).

A file (a zip member: its uncompressed size, read with a bound so a lying header cannot get
past) larger than ``MAX_FILE_BYTES`` is refused before it is read: a 2 GB CSV would take several
times that in memory. JSON nested too deep for the parser is a DataError, not a RecursionError.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cryptocast.config.names import symbol_from_slug
from cryptocast.data.store import OHLCV_COLUMNS, to_utc_timestamps
from cryptocast.errors import DataError, brief

MAX_FILE_BYTES = 512 * 2**20  # the largest candle file read (about 3.5M Binance kline rows)
_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "DAI", "BTC", "ETH", "BNB", "EUR", "GBP", "TRY")
_CDD_TF = {"d": "1d", "minute": "1m", "1m": "1m", "1h": "1h", "4h": "4h", "h": "1h", "w": "1w"}
_SUFFIXES = (".parquet", ".feather", ".json", ".csv", ".zip")


@dataclass
class Imported:
    """Candles parsed from one file, and the series they belong to (None: not inferable).

    ``raw``: the price columns as read (to tell text from blanks in errors); ``unit``: the epoch
    unit guessed from the numbers' size, None when the file holds dates.
    """

    path: Path
    symbol: str | None
    timeframe: str | None
    candles: pd.DataFrame
    raw: pd.DataFrame | None = None
    unit: str | None = None


def _split_pair(pair: str) -> str | None:
    """``BTCUSDT`` -> ``BTC/USDT`` using common quote currencies; None if unknown."""
    pair = pair.upper()
    for q in _QUOTES:
        if pair.endswith(q) and len(pair) > len(q):
            return f"{pair[: -len(q)]}/{q}"
    return None


def _epoch(values: np.ndarray, path: Path) -> tuple[pd.DatetimeIndex, str]:
    """Epoch numbers in s, ms or µs (guessed by magnitude) as UTC timestamps, and the unit."""
    f = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype="float64")
    bad = ~np.isfinite(f) | (f != np.round(f))
    if bad.any():
        row = int(np.flatnonzero(bad)[0]) + 1
        raise DataError(f"{path}: row {row}: open time {values[row - 1]!r} is not a whole number")
    big = int(np.abs(f).max()) if f.size else 0
    unit = "us" if big > 10**14 else "ms" if big > 10**11 else "s"
    try:
        if big >= 2**62:
            raise OverflowError
        v = f.astype("int64")
        ts = pd.to_datetime(v, unit=unit, utc=True).astype("datetime64[ns, UTC]")
    except (OverflowError, ValueError):  # OutOfBoundsDatetime is a ValueError
        raise DataError(
            f"{path}: open time {big} is out of range for any epoch unit; write it in ms"
        ) from None
    return ts, {"us": "µs"}.get(unit, unit)


def _need(df: pd.DataFrame, cols: list[str], path: Path) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)} (has {', '.join(map(str, df.columns))}); "
            "not a supported candle file"
        )


def _frame(
    ts: pd.DatetimeIndex | pd.Series, src: pd.DataFrame, cols: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Store columns (prices coerced; text becomes NaN) and the price columns as read."""
    out = pd.DataFrame({"timestamp": np.asarray(ts)})
    out["timestamp"] = (
        out["timestamp"].astype("datetime64[ns, UTC]") if len(out) else out["timestamp"]
    )
    raw = pd.DataFrame({n: src[c].to_numpy() for n, c in zip(OHLCV_COLUMNS[1:], cols, strict=True)})
    for name in OHLCV_COLUMNS[1:]:
        out[name] = pd.to_numeric(raw[name], errors="coerce")
    return out, raw


def _read_parquet(path: Path) -> Imported:
    # the store's own names: BASE-QUOTE_tf, or BASE-QUOTE-SETTLE[-EXPIRY]_tf for a derivative
    m = re.fullmatch(r"([A-Za-z0-9]+-[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*)_(\w+)", path.stem)
    try:
        df = pd.read_parquet(path)
    except Exception as err:  # noqa: BLE001 (pyarrow raises many types)
        raise DataError(f"{path}: not a readable Parquet file ({type(err).__name__})") from None
    if "timestamp" not in df.columns and "date" in df.columns:
        df = df.rename(columns={"date": "timestamp"})
    _need(df, OHLCV_COLUMNS, path)
    sym, tf = (symbol_from_slug(m[1].upper()), m[2]) if m else (None, None)
    return Imported(path, sym, tf, df)


def _freqtrade_name(path: Path) -> tuple[str | None, str | None]:
    m = re.fullmatch(r"([A-Za-z0-9]+)_([A-Za-z0-9]+)-(\w+?)(?:-spot)?", path.stem)
    return (f"{m[1]}/{m[2]}".upper(), m[3]) if m else (None, None)


def _read_feather(path: Path) -> Imported:
    try:
        df = pd.read_feather(path)
    except Exception as err:  # noqa: BLE001
        raise DataError(f"{path}: not a readable feather file ({type(err).__name__})") from None
    _need(df, ["date", "open", "high", "low", "close", "volume"], path)
    ts = to_utc_timestamps(df["date"], str(path))
    return Imported(path, *_freqtrade_name(path), *_frame(ts, df, OHLCV_COLUMNS[1:]))


def _read_json(path: Path) -> Imported:
    try:
        # stdlib json parses floats exactly (pandas' reader rounds the last digit)
        rows = json.loads(path.read_text())
    except (ValueError, TypeError) as err:
        raise DataError(f"{path}: not a freqtrade JSON candle list ({err})") from None
    except RecursionError:
        raise DataError(
            f"{path}: nested too deeply to be a candle list; expected "
            "[[ms, open, high, low, close, volume], ...]"
        ) from None
    if (
        not isinstance(rows, list)
        or not rows
        or any(not isinstance(r, list) or len(r) < 6 for r in rows)
    ):
        raise DataError(
            f"{path}: expected a non-empty list of [ms, open, high, low, close, volume]"
        )
    df = pd.DataFrame([r[:6] for r in rows], columns=OHLCV_COLUMNS)
    ts, unit = _epoch(df["timestamp"].to_numpy(), path)
    candles, raw = _frame(ts, df, OHLCV_COLUMNS[1:])
    return Imported(path, *_freqtrade_name(path), candles, raw, unit)


def _read_cdd(path: Path, text: str) -> Imported:
    lines = text.splitlines()
    skip = 1 if lines and lines[0].lower().startswith("http") else 0
    df = pd.read_csv(io.StringIO(text), skiprows=skip)
    df.columns = [str(c).strip() for c in df.columns]
    if df.empty:
        raise DataError(f"{path}: has a header but no candle rows")
    lower = {c.lower(): c for c in df.columns}
    base_vol = None
    sym = None
    if "symbol" in lower and len(df):
        sym = str(df[lower["symbol"]].iloc[0]).upper()
        sym = sym if "/" in sym else _split_pair(sym)
    if sym:  # volume in the base asset, like the store ("Volume BTC")
        base_vol = next(
            (c for c in df.columns if c.lower() == f"volume {sym.split('/')[0].lower()}"), None
        )
    need = ["unix", "open", "high", "low", "close"]
    missing = [c for c in need if c not in lower] + ([] if base_vol else ["Volume <base>"])
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)} (has {', '.join(df.columns)}); "
            "not a cryptodatadownload CSV"
        )
    m = re.search(r"_([A-Za-z0-9]+)\.csv$", path.name)
    tf = _CDD_TF.get(m[1].lower()) if m else None
    cols = [lower[c] for c in ("open", "high", "low", "close")] + [base_vol]
    ts, unit = _epoch(df[lower["unix"]].to_numpy(), path)
    return Imported(path, sym, tf, *_frame(ts, df, cols), unit)


def _read_binance_klines(path: Path, text: str) -> Imported:
    df = pd.read_csv(io.StringIO(text), header=None)
    if not pd.api.types.is_numeric_dtype(df[0]) and not str(df[0].iloc[0]).strip().isdigit():
        # newer dumps have a header line
        if len(df) < 2:
            raise DataError(f"{path}: has a header but no candle rows")
        df = pd.read_csv(io.StringIO(text), header=None, skiprows=1)
    if df.shape[1] < 6:
        raise DataError(f"{path}: has {df.shape[1]} columns, a Binance kline file has 12")
    m = re.fullmatch(r"([A-Za-z0-9]+)-(\w+?)-\d{4}-\d{2}(?:-\d{2})?", path.stem)
    sym, tf = (_split_pair(m[1]), m[2]) if m else (None, None)
    ts, unit = _epoch(df[0].to_numpy(), path)
    return Imported(path, sym, tf, *_frame(ts, df, [1, 2, 3, 4, 5]), unit)


def _size(n: int) -> str:
    return next(
        f"{n / 2**k:.1f} {unit}" for k, unit in ((30, "GiB"), (20, "MiB"), (10, "KiB"), (0, "B"))
        if n >= 2**k or k == 0
    )  # fmt: skip


def _too_big(what: str, max_bytes: int) -> DataError:
    return DataError(
        f"{what}, over the {_size(max_bytes)} limit of one import file; split it into smaller "
        "files (one per month, say) and import their folder"
    )


def _read_zip_member(path: Path, max_bytes: int) -> tuple[str, str]:
    """The first ``.csv`` member of a zip (name, text), its uncompressed size bounded."""
    with zipfile.ZipFile(path) as zf:
        names = [n for n in zf.namelist() if n.endswith(".csv")]
        if not names:
            raise DataError(f"{path}: zip holds no .csv file")
        info = zf.getinfo(names[0])
        what = f"{path}: {names[0]} holds"
        if info.file_size > max_bytes:
            raise _too_big(f"{what} {_size(info.file_size)}", max_bytes)
        with zf.open(info) as fh:  # bounded: a header may understate the size
            data = fh.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise _too_big(f"{what} more than its header says", max_bytes)
    return names[0], data.decode("utf-8", "replace")


def _read_csv(path: Path, max_bytes: int) -> Imported:
    if path.suffix == ".zip":
        member, text = _read_zip_member(path, max_bytes)
        path_for_name = path.with_name(Path(member).name)
    else:
        text = path.read_text(encoding="utf-8", errors="replace")
        path_for_name = path
    first_lines = text[:2000].lower().splitlines()[:2] or [""]
    banner = first_lines[0].startswith("http")
    header = first_lines[1] if banner and len(first_lines) > 1 else first_lines[0]
    if banner or "unix" in header:
        imp = _read_cdd(path_for_name, text)
    else:
        imp = _read_binance_klines(path_for_name, text)
    imp.path = path
    return imp


def read_file(path: Path, max_bytes: int = MAX_FILE_BYTES) -> Imported:
    """Parse one candle file into store columns (not yet validated). DataError names the file,
    also when it is larger than ``max_bytes`` (checked before reading)."""
    size = path.stat().st_size
    if size > max_bytes:
        raise _too_big(f"{path}: {_size(size)}", max_bytes)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _read_parquet(path)
    if suffix == ".feather":
        return _read_feather(path)
    if suffix == ".json":
        return _read_json(path)
    if suffix in (".csv", ".zip"):
        try:
            return _read_csv(path, max_bytes)
        except (pd.errors.ParserError, UnicodeError, zipfile.BadZipFile, ValueError) as err:
            if isinstance(err, DataError):
                raise
            raise DataError(f"{path}: cannot parse ({brief(err, 100)})") from None
    raise DataError(f"{path}: unsupported file type; use {', '.join(_SUFFIXES)}")


def find_files(path: Path) -> list[Path]:
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in _SUFFIXES and p.is_file())
        if not files:
            raise DataError(f"{path}: no candle files ({', '.join(_SUFFIXES)}) in this folder")
        return files
    if not path.is_file():
        raise DataError(f"{path} not found; pass a candle file or a folder of them")
    return [path]
