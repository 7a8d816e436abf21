"""Import candles from files a user already has, with the same validation and merge as fetch.

``readers`` parses each file (the formats are listed there); every file is then checked
(``checks``: finite positive prices, volume >= 0, consistent rows, closed candles, open times on
the timeframe's grid and spaced like it, a unit guess that fits the spacing) before anything is
written, so a bad file leaves the store as it was. An import that would change stored candles is
refused unless ``overwrite`` is set. The report tells new candles from re-imported ones that are
``unchanged`` and stored ones the import ``replaced``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cryptocast.config.names import check_exchange_name, symbol_slug
from cryptocast.config.timeframes import validate_timeframe
from cryptocast.data.checks import changed_candles, check_times, check_values
from cryptocast.data.integrity import integrity_report
from cryptocast.data.readers import MAX_FILE_BYTES, Imported, find_files, read_file
from cryptocast.data.store import (
    OHLCV_COLUMNS,
    data_lock,
    read_ohlcv,
    series_exists,
    series_path,
    store_candles,
    to_utc_timestamps,
    validate_ohlcv,
)
from cryptocast.errors import ConfigError, DataError


def _checked(imp: Imported, timeframe: str, now: pd.Timestamp | None) -> pd.DataFrame:
    """Apply every rule of ``checks`` to one parsed file; the candles in the store schema."""
    df = imp.candles.copy()
    df["timestamp"] = to_utc_timestamps(df["timestamp"], str(imp.path))
    raw = imp.raw if imp.raw is not None else imp.candles
    for c in OHLCV_COLUMNS[1:]:
        df[c] = pd.to_numeric(df[c].to_numpy(), errors="coerce").astype("float64")
    df = df[OHLCV_COLUMNS].reset_index(drop=True)
    if df.empty:
        raise DataError(f"{imp.path}: no candle rows")
    check_values(df, raw.reset_index(drop=True), imp.path)
    check_times(df, imp.path, timeframe, now, imp.unit)
    return validate_ohlcv(df, str(imp.path))


def import_path(
    data_dir: Path,
    path: Path,
    exchange: str = "binance",
    symbols: list[str] | None = None,
    timeframes: list[str] | None = None,
    lock_timeout: float = 30.0,
    overwrite: bool = False,
    now: pd.Timestamp | None = None,
    max_bytes: int = MAX_FILE_BYTES,
) -> list[dict]:
    """Import every candle file under ``path`` into the store; returns one report per series.

    ``symbols``/``timeframes`` select files whose names tell their series, and name the series of
    files whose names do not (then exactly one of each is needed). Files of the same series are
    combined (later files win on equal timestamps, but only when their values agree).

    Args:
        exchange: the folder the series go to: a ccxt id or any plain name (letters, digits).
        overwrite: allow the import to change candles already stored (otherwise refused).
        now: the clock for the "candle closed" rule (default: ``$CRYPTOCAST_NOW`` or now).
        max_bytes: the largest file (zip member: uncompressed) read; larger ones are refused.

    Returns:
        Per series: symbol, timeframe, new_candles, unchanged (re-imported candles equal to the
        stored ones), replaced (stored candles the import changed, with ``overwrite``) and the
        ``integrity_report`` keys; ``duplicates_dropped`` counts repeated rows in the files.

    Raises:
        DataError: a file is unreadable, has the wrong columns or breaks a rule of ``checks``, an
            import would change stored candles without ``overwrite``, or no file matches the
            selection. Nothing is written then.
        ConfigError: the series of a file cannot be inferred and was not given.
    """
    check_exchange_name(exchange)
    for tf in timeframes or []:
        validate_timeframe(tf)
    for sym in symbols or []:
        symbol_slug(sym)
    want_sym = {s.upper() for s in symbols or []}
    want_tf = set(timeframes or [])
    groups: dict[tuple[str, str], list[pd.DataFrame]] = {}
    for f in find_files(path):
        imp = read_file(f, max_bytes)
        if (imp.symbol and want_sym and imp.symbol not in want_sym) or (
            imp.timeframe and want_tf and imp.timeframe not in want_tf
        ):
            continue  # another series than the one asked for
        sym = imp.symbol or (symbols[0] if symbols and len(symbols) == 1 else None)
        tf = imp.timeframe or (timeframes[0] if timeframes and len(timeframes) == 1 else None)
        if not sym or not tf:
            raise ConfigError(
                f"{f}: cannot tell the symbol/timeframe from the file name; "
                "pass one --symbol and one --timeframe"
            )
        validate_timeframe(tf)
        symbol_slug(sym)
        groups.setdefault((sym, tf), []).append(_checked(imp, tf, now))
    if not groups:
        raise DataError(f"{path}: no candle file matches the requested symbols/timeframes")
    for (sym, tf), frames in groups.items():
        if len(frames) > 1:  # files of one series must agree where they overlap
            both = pd.concat(frames, ignore_index=True)
            check_times(both, f"{path} ({sym} {tf}, files combined)", tf, now)
    reports = []
    with data_lock(data_dir, lock_timeout):
        replaced: dict[tuple[str, str], int] = {}
        for sym, tf in groups:  # an unreadable stored file stops the import before any write
            target = series_path(data_dir, exchange, sym, tf)
            if not series_exists(target):
                continue
            frames = groups[(sym, tf)]
            new = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
            n, first = changed_candles(read_ohlcv(target), new)
            if n and not overwrite:
                raise DataError(
                    f"{path}: would change {n:,} stored {sym} {tf} candle(s) in {target} ({first}); "
                    "nothing was written: pass --overwrite to replace them"
                )
            replaced[(sym, tf)] = n
        for (sym, tf), frames in groups.items():
            new = frames[0] if len(frames) == 1 else validate_ohlcv(pd.concat(frames), str(path))
            dropped = sum(fr.attrs.get("duplicates_dropped", 0) for fr in frames)
            dropped += new.attrs.get("duplicates_dropped", 0) if len(frames) > 1 else 0
            merged, overlap = store_candles(data_dir, exchange, sym, tf, new)
            rep = integrity_report(merged, tf, duplicates_dropped=dropped)
            n = replaced.get((sym, tf), 0)
            reports.append(
                {"symbol": sym, "timeframe": tf, "new_candles": len(new) - overlap,
                 "unchanged": overlap - n, "replaced": n, **rep}
            )  # fmt: skip
    return reports
