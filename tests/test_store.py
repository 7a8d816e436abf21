"""The Parquet store: schema, atomic writes, the lock, merge rule, and the integrity report."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from cryptocast.data import store
from cryptocast.data.integrity import integrity_report
from cryptocast.data.store import (
    OHLCV_COLUMNS,
    data_lock,
    load_series,
    merge_ohlcv,
    read_ohlcv,
    series_path,
    store_candles,
    validate_ohlcv,
    write_parquet_atomic,
)
from cryptocast.errors import ConfigError, DataError, LockedError
from tests.conftest import data_lock_held_elsewhere, make_ohlcv


def test_series_path_layout(data_dir):
    p = series_path(data_dir, "binance", "BTC/USDT", "1h")
    assert p == data_dir / "ohlcv" / "binance" / "BTC-USDT_1h.parquet"
    assert series_path(data_dir, "kraken", "eth/eur", "1d", kind="features").parts[-3:] == (
        "features",
        "kraken",
        "ETH-EUR_1d.parquet",
    )
    with pytest.raises(ConfigError, match="timeframe"):
        series_path(data_dir, "binance", "BTC/USDT", "7x")


def test_validate_coerces_sorts_and_dedups_keeping_last():
    df = make_ohlcv(5)
    shuffled = pd.concat([df.iloc[[3, 1]], df.iloc[[0, 2, 4]], df.iloc[[1]]], ignore_index=True)
    shuffled.loc[5, "close"] = 999.0  # the later duplicate of row 1 must win
    shuffled["timestamp"] = shuffled["timestamp"].dt.tz_localize(None)  # naive -> UTC
    shuffled["volume"] = shuffled["volume"].astype("float32")
    shuffled["extra"] = 1
    out = validate_ohlcv(shuffled, "test")
    assert list(out.columns) == OHLCV_COLUMNS
    assert str(out["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert (out.dtypes.iloc[1:] == np.float64).all()
    assert out["timestamp"].is_monotonic_increasing and len(out) == 5
    assert out.loc[1, "close"] == 999.0
    assert out.attrs["duplicates_dropped"] == 1


def test_validate_errors_name_source_and_columns():
    df = make_ohlcv(3).drop(columns=["volume", "high"])
    with pytest.raises(DataError, match=r"prices\.csv: missing column\(s\) high, volume"):
        validate_ohlcv(df, "prices.csv")
    df = make_ohlcv(3)
    df.loc[1, "open"] = np.nan
    with pytest.raises(DataError, match="1 row"):
        validate_ohlcv(df, "x")


def test_read_rejects_corrupt_and_wrong_schema(data_dir):
    bad = data_dir / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match=r"bad\.parquet is unreadable.*move it aside or delete it"):
        read_ohlcv(bad)
    wrong = data_dir / "wrong.parquet"
    make_ohlcv(3).rename(columns={"volume": "vol"}).to_parquet(wrong)
    with pytest.raises(DataError, match="wrong.parquet has columns"):
        read_ohlcv(wrong)
    with pytest.raises(
        DataError,
        match=r"run `cryptocast fetch --symbol BTC/USDT --timeframe 1d --exchange binance",
    ):
        load_series(data_dir, "binance", "BTC/USDT", "1d")


def test_roundtrip_and_merge_new_wins(data_dir):
    a = make_ohlcv(10)
    b = make_ohlcv(10, start="2020-01-06", seed=1)  # overlaps a's last 5 days
    merged, dupes = merge_ohlcv(a, b)
    assert dupes == 5 and len(merged) == 15
    assert merged.iloc[5:].reset_index(drop=True).equals(b)
    store_candles(data_dir, "binance", "BTC/USDT", "1d", a)
    merged2, dupes2 = store_candles(data_dir, "binance", "BTC/USDT", "1d", b)
    assert dupes2 == 5
    assert load_series(data_dir, "binance", "BTC/USDT", "1d").equals(merged)


def test_crash_between_temp_write_and_replace_keeps_old_file(data_dir, monkeypatch):
    path = data_dir / "ohlcv" / "x" / "BTC-USDT_1d.parquet"
    write_parquet_atomic(make_ohlcv(20), path)
    before = path.read_bytes()

    def boom(src, dst):
        raise OSError("simulated crash")

    monkeypatch.setattr(store.os, "replace", boom)
    with pytest.raises(OSError, match="simulated"):
        write_parquet_atomic(make_ohlcv(30, seed=5), path)
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == [path.name]  # no temp file left behind


def test_lock_times_out_with_locked_error(data_dir):
    with (
        data_lock_held_elsewhere(data_dir),
        pytest.raises(LockedError, match="another cryptocast process"),
        data_lock(data_dir, timeout=0.1),
    ):
        pass


def test_integrity_report_counts_gaps_zero_volume_and_violations():
    df = make_ohlcv(100, timeframe="1h", drop=[10, 11, 12, 50])
    df.loc[20, "volume"] = 0.0
    df.loc[30, "high"] = df.loc[30, "low"] * 0.5  # high below low: violation
    rep = integrity_report(df, "1h", duplicates_dropped=2)
    assert rep["rows"] == 96
    assert (rep["gaps"], rep["missing"], rep["largest_gap"]) == (2, 4, 3)
    assert rep["zero_volume"] == 1 and rep["ohlc_violations"] == 1
    assert rep["duplicates_dropped"] == 2
    assert rep["first"] == df["timestamp"].iloc[0] and rep["last"] == df["timestamp"].iloc[-1]
    empty = integrity_report(df.iloc[:0], "1h")
    assert empty["rows"] == 0 and empty["first"] is None


def test_a_long_reason_is_cut_at_a_word_not_mid_word():
    from cryptocast.errors import brief

    long = (
        "Parquet magic bytes not found in footer. "
        "Either the file is corrupted or this is not a parquet file"
    )
    cut = "Parquet magic bytes not found in footer. Either the file is ..."
    assert brief(ValueError(long), 60) == cut
    assert brief(ValueError(long), 62) == cut  # "corrupted" is not cut to "co"
    assert brief(ValueError("short\nsecond line")) == "short"
    assert brief(ValueError("")) == "ValueError"


def test_stale_temp_files_of_killed_writers_are_removed_live_ones_kept(data_dir):
    import subprocess
    import sys

    path = series_path(data_dir, "binance", "BTC/USDT", "1d")
    write_parquet_atomic(make_ohlcv(20), path)
    before = path.read_bytes()
    # a writer killed with SIGKILL between writing its temp file and the rename
    script = (
        "import os, signal, sys\n"
        "from cryptocast.data import store\n"
        "from tests.conftest import make_ohlcv\n"
        "store.os.replace = lambda a, b: os.kill(os.getpid(), signal.SIGKILL)\n"
        "store.write_parquet_atomic(make_ohlcv(30, seed=1), store.Path(sys.argv[1]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(path)], check=False)
    assert proc.returncode == -9
    stale = sorted(p.name for p in path.parent.glob(".*.tmp"))
    assert len(stale) == 1 and path.read_bytes() == before  # the old file is intact
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        live_tmp = path.parent / f".{path.name}.{live.pid}.tmp"
        live_tmp.write_bytes(b"being written")
        with data_lock(data_dir):
            store_candles(data_dir, "binance", "BTC/USDT", "1d", make_ohlcv(25))
        assert sorted(p.name for p in path.parent.glob(".*.tmp")) == [live_tmp.name]
    finally:
        live.kill()
        live.wait()
    assert len(load_series(data_dir, "binance", "BTC/USDT", "1d")) == 25
