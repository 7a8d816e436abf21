"""Fetching 5-minute candles through real ccxt against the fake Binance: the monthly store."""

from __future__ import annotations

import os
import time
from urllib.parse import parse_qs, urlparse

import pandas as pd
import pytest
from typer.testing import CliRunner

from cryptocast.cli import app
from cryptocast.data.fetch import fetch_series
from cryptocast.data.importers import import_path
from cryptocast.data.store import load_series, series_path
from tests.fake_exchange import FakeExchange
from tests.test_store_fine import fine

KLINES = "/api/v3/klines"


@pytest.fixture
def fx():
    with FakeExchange() as server:
        yield server


@pytest.mark.parametrize("tf", ["5m", "1m", "15m"])
def test_fine_fetch_is_byte_identical_to_an_import_of_the_same_candles(fx, tmp_path, tf):
    n = {"5m": 12_000, "1m": 3_000, "15m": 4_000}[tf]  # each spans a month boundary
    df = fine(n, start="2023-01-30", tf=tf).drop(index=[7, 8, 900]).reset_index(drop=True)
    fx.set_series("BTC", "USDT", tf, df)
    fetched, imported = tmp_path / "fetched", tmp_path / "imported"
    rep = fetch_series(fetched, "binance", "BTC/USDT", tf, "2023-01-01", exchange_url=fx.url)
    assert rep.error is None and rep.new_candles == len(df)
    assert rep.integrity["rows"] == len(df) and rep.integrity["missing"] == 3
    src = tmp_path / "files"
    src.mkdir()
    df.to_parquet(src / f"BTC-USDT_{tf}.parquet")
    import_path(imported, src)
    a = series_path(fetched, "binance", "BTC/USDT", tf)
    b = series_path(imported, "binance", "BTC/USDT", tf)
    names = sorted(p.name for p in a.glob("*.parquet"))
    assert len(names) >= 2 and names == sorted(p.name for p in b.glob("*.parquet"))
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    pd.testing.assert_frame_equal(load_series(fetched, "binance", "BTC/USDT", tf), df,
                                  check_exact=True)  # fmt: skip


def test_incremental_fine_fetch_resumes_and_touches_only_the_last_month(fx, data_dir):
    df = fine(20_000, start="2023-01-30")  # to 2023-04-10
    day = 288
    fx.set_series("BTC", "USDT", "5m", df.iloc[:-day])
    fetch_series(data_dir, "binance", "BTC/USDT", "5m", "2023-01-30", exchange_url=fx.url)
    folder = series_path(data_dir, "binance", "BTC/USDT", "5m")
    past = time.time() - 3600
    for p in folder.glob("*.parquet"):
        os.utime(p, (past, past))
    before = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.parquet")}
    fx.set_series("BTC", "USDT", "5m", df)
    fx.reset_counts()
    rep = fetch_series(data_dir, "binance", "BTC/USDT", "5m", "2023-01-30", exchange_url=fx.url)
    assert rep.new_candles == day and rep.integrity["rows"] == len(df)
    starts = [int(parse_qs(urlparse(p).query)["startTime"][0]) for p in fx.log if
              p.startswith(KLINES)]  # fmt: skip
    assert starts[0] == int(df["timestamp"].iloc[-day - 1].value // 1_000_000) + 300_000
    after = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.parquet")}
    assert sorted(k for k in after if after[k] != before.get(k)) == ["2023-04.parquet"]
    pd.testing.assert_frame_equal(load_series(data_dir, "binance", "BTC/USDT", "5m"), df,
                                  check_exact=True)  # fmt: skip


def test_cli_fetch_5m_then_data(fx, data_dir):
    fx.set_series("BTC", "USDT", "5m", fine(9_000, start="2023-01-30"))
    res = CliRunner().invoke(app, ["fetch", "-s", "BTC/USDT", "-t", "5m", "--since", "2023-01-01",
                                   "--exchange-url", fx.url, "--data-dir", str(data_dir)])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "BTC/USDT 5m" in res.output
    res = CliRunner().invoke(app, ["data", "--data-dir", str(data_dir)])
    assert res.exit_code == 0, res.output
    assert res.output.count("BTC/USDT 5m") == 1 and "9,000" in res.output
