"""Append one day of 5-minute candles to 1.5 years of history: monthly files vs one file.

The daily cron's store cost. ``single file`` is the store's layout for 1h and longer (and was the
only one before the monthly layout): read the series, merge, rewrite it whole. ``monthly files``
is the layout of timeframes under 1h (``cryptocast.data.months``): only the month the day falls in
is read, merged and rewritten. Both write the same way (zstd, page CRCs, SHA-256, temp file +
fsync + rename). Also: bytes rewritten per append, and the time to read the whole series (what
``fetch`` reads once before it resumes). Data: the shared BTC/USDT 5-minute candles
(2022-01 -> 2023-06) when present, else seeded synthetic ones; quick mode uses three synthetic
months.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from bench.common import SHARED_OHLCV, main, median_time, record

NAME = "store"
SHARED_FINE = SHARED_OHLCV.parent.parent / "fine" / "binance" / "BTC-USDT_5m.parquet"
DAY = 288  # 5-minute candles in a UTC day


def _candles(quick: bool):
    import pandas as pd

    from bench.candles import synthetic_candles

    if not quick and SHARED_FINE.is_file():
        return pd.read_parquet(SHARED_FINE), "reference BTC/USDT"
    n = DAY * (90 if quick else 546)  # 3 months, or 1.5 years
    df = synthetic_candles(n, seed=0, freq="5min", vol=0.002, spread=0.001)
    return df, "synthetic"


def run(quick: bool) -> list[dict]:
    from cryptocast.data.months import month_files
    from cryptocast.data.parquet_io import merge_ohlcv, read_candle_file, write_parquet_atomic
    from cryptocast.data.store import append_candles, read_ohlcv, series_path, store_candles

    df, data = _candles(quick)
    history, day = df.iloc[:-DAY].reset_index(drop=True), df.iloc[-DAY:].reset_index(drop=True)
    repeats, warmup = (2, 0) if quick else (7, 1)
    params = {"timeframe": "5m", "history_rows": len(history), "append_rows": len(day),
              "data": data}  # fmt: skip
    records = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        # single file: what store_candles does for a 1h series (and did for every timeframe)
        single, pristine = tmp / "single" / "BTC-USDT_5m.parquet", tmp / "single.pristine"
        write_parquet_atomic(history, single)
        shutil.copyfile(single, pristine)

        def append_single() -> None:
            old = read_candle_file(single)
            write_parquet_atomic(merge_ohlcv(old, day)[0], single)

        def reset_single() -> None:
            shutil.copyfile(pristine, single)

        # monthly files: the layout of timeframes under 1h
        data_dir = tmp / "monthly"
        store_candles(data_dir, "binance", "BTC/USDT", "5m", history)
        folder = series_path(data_dir, "binance", "BTC/USDT", "5m")
        last = month_files(folder)[-1]
        saved = tmp / "last.pristine"
        shutil.copyfile(last, saved)
        written: list[Path] = []

        def append_monthly() -> None:
            written[:] = append_candles(data_dir, "binance", "BTC/USDT", "5m", day)[1]

        def reset_monthly() -> None:
            shutil.copyfile(saved, last)

        timings = {}
        for label, fn, reset in (("single file", append_single, reset_single),
                                 ("monthly files", append_monthly, reset_monthly)):  # fmt: skip
            times = []
            for _ in range(warmup + repeats):
                reset()
                times.append(median_time(fn, repeats=1, warmup=0)[0])
            times = times[warmup:]
            timings[label] = sorted(times)[len(times) // 2]
            records.append(record(f"append one day seconds, {label}", timings[label], "s", params,
                                  digits=4, times=[round(t, 4) for t in times]))  # fmt: skip
        assert [p.name for p in written] == [last.name], written  # one month rewritten
        records.append(record("append speed-up, monthly files over single file",
                              timings["single file"] / timings["monthly files"], "×", params,
                              digits=1))  # fmt: skip
        records.append(record("bytes rewritten per append, single file", single.stat().st_size,
                              "bytes", params, digits=None))  # fmt: skip
        records.append(record("bytes rewritten per append, monthly files", last.stat().st_size,
                              "bytes", params, digits=None, months=len(month_files(folder))))  # fmt: skip
        for label, path in (("single file", single), ("monthly files", folder)):
            med, times = median_time(lambda p=path: read_ohlcv(p), repeats=repeats, warmup=warmup)
            records.append(record(f"read whole series seconds, {label}", med, "s", params,
                                  digits=4, times=[round(t, 4) for t in times]))  # fmt: skip
        assert read_ohlcv(folder).equals(read_ohlcv(single))  # both hold the same candles
    return records


if __name__ == "__main__":
    main(NAME, run, __doc__, "three synthetic months: about a second", echo="records")
