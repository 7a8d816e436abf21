"""The store's layout for candles under 1h: one Parquet file per UTC month, same guarantees."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cryptocast.cli import app
from cryptocast.data.importers import import_path
from cryptocast.data.store import load_series, read_ohlcv, series_path, store_candles
from cryptocast.errors import DataError
from tests.conftest import make_ohlcv

SHARED_FINE = Path(__file__).resolve().parents[2] / "shared" / "data" / "fine" / "binance"


def fine(n: int, start: str = "2023-01-30", seed: int = 0, tf: str = "5m") -> pd.DataFrame:
    """Seeded 5-minute (or ``tf``) candles in the store schema."""
    df = make_ohlcv(n, "1m", start=start, seed=seed)
    df["timestamp"] = pd.date_range(start, periods=n, freq=tf.replace("m", "min"), tz="UTC")
    df["timestamp"] = df["timestamp"].astype("datetime64[ns, UTC]")
    return df


def months(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.parquet"))


def test_fine_series_is_one_file_per_month_and_reads_back_whole(data_dir):
    df = fine(20_000)  # 2023-01-30 -> 2023-04-10: four months
    store_candles(data_dir, "binance", "BTC/USDT", "5m", df)
    folder = series_path(data_dir, "binance", "BTC/USDT", "5m")
    assert folder == data_dir / "ohlcv" / "binance" / "BTC-USDT_5m"
    assert months(folder) == ["2023-01.parquet", "2023-02.parquet", "2023-03.parquet",
                              "2023-04.parquet"]  # fmt: skip
    feb = read_ohlcv(folder / "2023-02.parquet")
    assert len(feb) == 28 * 288 and feb["timestamp"].dt.month.eq(2).all()
    pd.testing.assert_frame_equal(load_series(data_dir, "binance", "BTC/USDT", "5m"), df,
                                  check_exact=True)  # fmt: skip
    hourly = make_ohlcv(100, "1h", start="2023-01-30")  # 1h and longer: one file, as before
    store_candles(data_dir, "binance", "BTC/USDT", "1h", hourly)
    assert series_path(data_dir, "binance", "BTC/USDT", "1h").is_file()


def test_append_rewrites_only_the_months_it_touches(data_dir):
    df = fine(20_000)
    store_candles(data_dir, "binance", "BTC/USDT", "5m", df.iloc[:-288])
    folder = series_path(data_dir, "binance", "BTC/USDT", "5m")
    past = time.time() - 3600
    for p in folder.glob("*.parquet"):
        os.utime(p, (past, past))
    before = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.parquet")}
    merged, dupes = store_candles(data_dir, "binance", "BTC/USDT", "5m", df.iloc[-300:])
    after = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.parquet")}
    changed = sorted(k for k in after if after[k] != before.get(k))
    assert changed == ["2023-04.parquet"] and dupes == 12
    pd.testing.assert_frame_equal(merged, df, check_exact=True)
    pd.testing.assert_frame_equal(load_series(data_dir, "binance", "BTC/USDT", "5m"), df,
                                  check_exact=True)  # fmt: skip


def test_a_damaged_month_is_named_and_never_overwritten(data_dir):
    store_candles(data_dir, "binance", "BTC/USDT", "5m", fine(20_000))
    bad = series_path(data_dir, "binance", "BTC/USDT", "5m") / "2023-02.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(DataError, match="2023-02.parquet"):
        load_series(data_dir, "binance", "BTC/USDT", "5m")
    with pytest.raises(DataError, match="2023-02.parquet"):
        store_candles(data_dir, "binance", "BTC/USDT", "5m", fine(20_000, seed=1))
    assert bad.read_bytes() == b"not parquet"


_WRITER = """
import sys
import pandas as pd
from cryptocast.data.store import data_lock, store_candles
df = pd.read_parquet(sys.argv[2])
with data_lock(sys.argv[1]):
    store_candles(sys.argv[1], "binance", "BTC/USDT", "5m", df)
"""


def test_kill_9_during_a_fine_append_loses_nothing(data_dir, tmp_path):
    df = fine(20_000)
    stored = df.iloc[:15_000]
    store_candles(data_dir, "binance", "BTC/USDT", "5m", stored)
    changed = df.copy()
    changed[["open", "high", "low", "close"]] *= 1.5  # the append rewrites stored months too
    new = tmp_path / "new.parquet"
    changed.iloc[10_000:].to_parquet(new)
    marker = tmp_path / "paused"
    env = {**os.environ, "CRYPTOCAST_TEST_PAUSE_WRITE": str(marker)}
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(data_dir), str(new)], env=env,
                            cwd=root)  # fmt: skip
    try:
        deadline = time.time() + 60
        while not marker.exists():  # the writer has its temp file written and fsynced
            assert proc.poll() is None, "the writer exited before pausing"
            assert time.time() < deadline, "the writer never paused"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    folder = series_path(data_dir, "binance", "BTC/USDT", "5m")
    assert list(folder.glob(".*.tmp")), "the kill should leave the temp file behind"
    pd.testing.assert_frame_equal(load_series(data_dir, "binance", "BTC/USDT", "5m"), stored,
                                  check_exact=True)  # fmt: skip
    merged, _ = store_candles(data_dir, "binance", "BTC/USDT", "5m", df.iloc[15_000:])
    pd.testing.assert_frame_equal(merged, df, check_exact=True)
    assert not list(folder.glob(".*.tmp"))  # the dead writer's temp file is cleaned up


def test_data_lists_a_fine_series_once_with_its_totals(data_dir):
    store_candles(data_dir, "binance", "BTC/USDT", "5m", fine(20_000, seed=0).drop(index=[50, 51]))
    store_candles(data_dir, "binance", "BTC/USDT", "1h", make_ohlcv(100, "1h"))
    res = CliRunner().invoke(app, ["data", "--data-dir", str(data_dir), "--format", "json"])
    assert res.exit_code == 0, res.output
    import json

    rows = json.loads(res.output)
    series = sorted((r["symbol"], r["timeframe"]) for r in rows)
    assert series == [("BTC/USDT", "1h"), ("BTC/USDT", "5m")]
    five = next(r for r in rows if r["timeframe"] == "5m")
    assert (five["rows"], five["gaps"], five["missing"]) == (19_998, 1, 2)


def test_import_of_the_shared_five_minute_candles(data_dir):
    if not (SHARED_FINE / "BTC-USDT_5m.parquet").is_file():
        pytest.skip(f"shared 5-minute candles not found at {SHARED_FINE}")
    reports = import_path(data_dir, SHARED_FINE, timeframes=["5m"])
    assert sorted(r["symbol"] for r in reports) == ["BTC/USDT", "ETH/USDT", "LTC/USDT"]
    for r in reports:
        src = pd.read_parquet(SHARED_FINE / f"{r['symbol'].replace('/', '-')}_5m.parquet")
        got = load_series(data_dir, "binance", r["symbol"], "5m")
        pd.testing.assert_frame_equal(got, src.reset_index(drop=True), check_exact=True)
        folder = series_path(data_dir, "binance", r["symbol"], "5m")
        assert months(folder)[0] == "2022-01.parquet" and len(months(folder)) == 18
        assert r["rows"] == len(src) and r["new_candles"] == len(src)
