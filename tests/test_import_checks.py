"""Hostile import files: each is refused naming the file, the row and the rule; the store is unchanged."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cryptocast.cli import app
from cryptocast.data.importers import import_path
from cryptocast.data.store import load_series, series_path, write_parquet_atomic
from cryptocast.errors import ConfigError, DataError
from tests.conftest import make_ohlcv

DAY = 86_400_000
JAN1 = 1_672_531_200_000  # 2023-01-01 00:00 UTC in ms


@pytest.fixture
def stored(data_dir) -> pd.DataFrame:
    """A daily BTC/USDT series 2022-12-01 .. 2023-01-29 already in the store."""
    df = make_ohlcv(60, "1d", start="2022-12-01", seed=9)
    write_parquet_atomic(df, series_path(data_dir, "binance", "BTC/USDT", "1d"))
    return df


def _snapshot(data_dir):
    return {p: p.read_bytes() for p in data_dir.rglob("*") if p.is_file() and p.name != ".lock"}


def _klines(rows: list[list]) -> str:
    return "\n".join(",".join(str(v) for v in r) for r in rows) + "\n"


def _kline_row(t: int, o=1.0, h=2.0, lo=0.5, c=1.5, v=10.0) -> list:
    return [t, o, h, lo, c, v, t + DAY - 1, 0, 1, 0, 0, 0]


BAD_FILES = {
    "inf_json": (
        "BTC_USDT-1d.json",
        json.dumps(
            [[JAN1, 1, 1.5, 0.5, 1.2, 10], [JAN1 + DAY, 1, "Infinity", 0.5, 1.5, 10]]
        ).replace('"Infinity"', "Infinity"),
        r"BTC_USDT-1d\.json: row 2: high inf is not a finite number",
    ),
    "year_10000_ms": (
        "BTCUSDT-1d-2023-01.csv",
        _klines([_kline_row(253402300800000 + i * DAY) for i in range(31)]),
        r"open times read as µs \(by their size\) lie 0 days 00:01:26.400000 apart",
    ),
    "one_year_10000_row": (
        "BTCUSDT-1d-2023-02.csv",
        _klines([_kline_row(253402300800000)]),
        r"row 1: open time 1978-01-11 .* is before 2009-01-01",
    ),
    "negative_time": (
        "BTCUSDT-1d-2023-03.csv",
        _klines([_kline_row(JAN1), _kline_row(-DAY)]),
        r"row 2: open time .* is before 2009-01-01",
    ),
    "negative_price": (
        "BTCUSDT-1d-2023-04.csv",
        _klines([_kline_row(JAN1), _kline_row(JAN1 + DAY, lo=-5)]),
        r"BTCUSDT-1d-2023-04\.csv: row 2: low -5 is not positive",
    ),
    "negative_volume": (
        "BTCUSDT-1d-2023-05.csv",
        _klines([_kline_row(JAN1, v=-1)]),
        r"row 1: volume -1 is negative",
    ),
    "duplicate_other_values": (
        "BTCUSDT-1d-2023-06.csv",
        _klines([_kline_row(JAN1), _kline_row(JAN1 + DAY), _kline_row(JAN1, c=1.0)]),
        r"rows 1 and 3 share open time 2023-01-01 00:00:00\+00:00 with different values",
    ),
    "off_grid": (
        "BTCUSDT-1d-2023-07.csv",
        _klines([_kline_row(JAN1 + 3_600_000)]),
        r"row 1: open time 2023-01-01 01:00:00\+00:00 is not on the 1d grid",
    ),
    "future": (
        "BTCUSDT-1d-2023-08.csv",
        _klines([_kline_row(JAN1), _kline_row(4_102_444_800_000)]),  # 2100-01-01
        r"row 2: open time 2100-01-01 .* is in the future",
    ),
    "text_price": (
        "BTCUSDT-1d-2023-09.csv",
        _klines([_kline_row(JAN1), _kline_row(JAN1 + DAY, c="abc")]),
        r"row 2: close 'abc' is not a number",
    ),
    "header_only_cdd": (
        "Binance_BTCUSDT_d.csv",
        "https://www.CryptoDataDownload.com\nunix,date,symbol,open,high,low,close,Volume BTC\n",
        r"Binance_BTCUSDT_d\.csv: has a header but no candle rows",
    ),
    "json_out_of_range": (
        "BTC_USDT-1d.json",
        json.dumps([[10**20, 1, 2, 0.5, 1.5, 10]]),
        r"open time 100000000000000000000 is out of range",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_is_refused_naming_file_row_and_rule(case, stored, data_dir, tmp_path):
    name, text, match = BAD_FILES[case]
    path = tmp_path / name
    path.write_text(text)
    before = _snapshot(data_dir)
    with pytest.raises(DataError, match=match):
        import_path(data_dir, path)
    assert _snapshot(data_dir) == before


def test_parquet_with_out_of_range_timestamps_is_a_data_error(data_dir, tmp_path):
    df = make_ohlcv(3, "1d")
    df["timestamp"] = pd.to_datetime(["2023-01-01", "2023-01-02", "2999-01-01"]).astype(
        "datetime64[ms]"
    )
    path = tmp_path / "BTC-USDT_1d.parquet"
    df.to_parquet(path)
    with pytest.raises(DataError, match=r"BTC-USDT_1d\.parquet: a timestamp is out of range"):
        import_path(data_dir, path)


def test_changing_stored_candles_needs_overwrite(stored, data_dir, tmp_path):
    path = tmp_path / "BTCUSDT-1d-2023-01.csv"
    ms = stored["timestamp"].astype("int64") // 1_000_000
    rows = [_kline_row(int(t), *stored.iloc[i, 1:6].tolist()) for i, t in enumerate(ms)]
    for i in (31, 32, 33):  # three candles with other closes
        rows[i][4] = rows[i][4] * 1.01
    rows.append(_kline_row(int(ms.iloc[-1]) + DAY))  # and one new candle
    path.write_text(_klines(rows))
    before = _snapshot(data_dir)
    with pytest.raises(DataError, match=r"would change 3 stored BTC/USDT 1d candle\(s\)"):
        import_path(data_dir, path)
    assert _snapshot(data_dir) == before
    res = CliRunner().invoke(app, ["fetch", "--import", str(path), "--data-dir", str(data_dir)])
    assert res.exit_code == 3 and "pass --overwrite" in res.output
    assert _snapshot(data_dir) == before
    res = CliRunner().invoke(
        app, ["fetch", "--import", str(path), "--data-dir", str(data_dir), "--overwrite"]
    )
    assert res.exit_code == 0, res.output
    got = load_series(data_dir, "binance", "BTC/USDT", "1d")
    assert len(got) == 61 and np.isclose(got["close"].iloc[31], stored["close"].iloc[31] * 1.01)
    # identical candles again: nothing changes, no --overwrite needed
    (rep,) = import_path(data_dir, path)
    assert rep["new_candles"] == 0


def test_us_open_times_of_2025_files_still_import(data_dir, tmp_path):
    t0 = 1_735_689_600_000  # 2025-01-01
    rows = [_kline_row(t0 + i * DAY) for i in range(3)]
    for r in rows:
        r[0] *= 1000  # Binance public data switched to µs in 2025
    path = tmp_path / "BTCUSDT-1d-2025-01.csv"
    path.write_text(_klines(rows))
    (rep,) = import_path(data_dir, path)
    assert rep["rows"] == 3 and str(rep["first"]) == "2025-01-01 00:00:00+00:00"


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"symbols": ["BTC/../../../../../ESC"], "timeframes": ["1d"]}, "symbol 'BTC/../"),
        ({"exchange": "../../../escex"}, "exchange '../../../escex' is not a valid"),
        ({"symbols": ["B" * 300 + "/USDT"], "timeframes": ["1d"]}, "must look like BASE/QUOTE"),
    ],
)
def test_import_names_never_escape_the_data_folder(kw, match, data_dir, tmp_path):
    path = tmp_path / "f.csv"
    path.write_text(_klines([_kline_row(JAN1)]))
    with pytest.raises(ConfigError, match=match):
        import_path(data_dir, path, **kw)
    assert not list(tmp_path.rglob("*.parquet"))
    # a plain safe name is fine on import (the data came from somewhere ccxt does not know)
    (rep,) = import_path(data_dir, path, "myexchange", ["BTC/USDT"], ["1d"])
    assert series_path(data_dir, "myexchange", "BTC/USDT", "1d").is_file() and rep["rows"] == 1
