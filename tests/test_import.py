"""`--import`: every supported file format lands in the store exactly; bad files change nothing."""

from __future__ import annotations

import json
import zipfile

import pandas as pd
import pytest

from cryptocast.data.importers import import_path
from cryptocast.data.store import load_series, series_path, write_parquet_atomic
from cryptocast.errors import ConfigError, DataError
from tests.conftest import make_ohlcv


@pytest.fixture
def candles() -> pd.DataFrame:
    return make_ohlcv(300, timeframe="1h", start="2024-12-30", seed=4, drop=[7, 8])


def _ms(df: pd.DataFrame) -> pd.Series:
    return df["timestamp"].astype("int64") // 1_000_000


def _cols(df: pd.DataFrame) -> list[pd.Series]:
    return [df[c] for c in ("open", "high", "low", "close", "volume")]


def _write_freqtrade_feather(df, folder):
    p = folder / "BTC_USDT-1h.feather"
    df.rename(columns={"timestamp": "date"}).to_feather(p)
    return p


def _write_freqtrade_json(df, folder):
    p = folder / "BTC_USDT-1h.json"
    rows = [
        [t, *v] for t, *v in zip(_ms(df).tolist(), *(c.tolist() for c in _cols(df)), strict=True)
    ]
    p.write_text(json.dumps(rows))
    return p


def _write_cdd(df, folder, unit="ms"):
    p = folder / "Binance_BTCUSDT_1h.csv"
    out = pd.DataFrame(
        {
            "unix": _ms(df) if unit == "ms" else _ms(df) // 1000,
            "date": df["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S"),
            "symbol": "BTCUSDT",
            "open": df["open"],
            "high": df["high"],
            "low": df["low"],
            "close": df["close"],
            "Volume BTC": df["volume"],
            "Volume USDT": df["volume"] * df["close"],
            "tradecount": 100,
        }
    ).iloc[::-1]  # newest first, like the real files
    p.write_text(
        "https://www.CryptoDataDownload.com\n" + out.to_csv(index=False, float_format="%.17g")
    )
    return p


def _kline_csv(df, unit="ms"):
    t = _ms(df) * (1000 if unit == "us" else 1)
    out = pd.DataFrame({0: t, **{i + 1: c for i, c in enumerate(_cols(df))}})
    for i in range(6, 12):
        out[i] = t + 3_599_999 if i == 6 else 0
    return out.to_csv(index=False, header=False, float_format="%.17g")


def _write_binance_csv(df, folder):
    p = folder / "BTCUSDT-1h-2024-12.csv"
    p.write_text(_kline_csv(df))
    return p


def _write_binance_zip_us(df, folder):
    p = folder / "BTCUSDT-1h-2025-01.zip"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("BTCUSDT-1h-2025-01.csv", _kline_csv(df, unit="us"))
    return p


@pytest.mark.parametrize(
    "writer",
    [
        _write_freqtrade_feather,
        _write_freqtrade_json,
        _write_cdd,
        _write_binance_csv,
        _write_binance_zip_us,
    ],
)
def test_each_format_imports_exactly(writer, candles, data_dir, tmp_path):
    src = writer(candles, tmp_path)
    (rep,) = import_path(data_dir, src)
    assert (rep["symbol"], rep["timeframe"], rep["new_candles"]) == ("BTC/USDT", "1h", 298)
    assert rep["gaps"] == 1 and rep["missing"] == 2
    stored = load_series(data_dir, "binance", "BTC/USDT", "1h")
    pd.testing.assert_frame_equal(stored, candles.reset_index(drop=True), check_exact=True)


def test_cdd_in_seconds_and_symbol_override(candles, data_dir, tmp_path):
    src = _write_cdd(candles, tmp_path, unit="s")
    renamed = src.rename(tmp_path / "export.csv")
    (rep,) = import_path(data_dir, renamed, exchange="kraken", timeframes=["1h"])
    assert rep["rows"] == 298
    assert series_path(data_dir, "kraken", "BTC/USDT", "1h").is_file()


def test_unknown_series_needs_symbol_and_timeframe(candles, data_dir, tmp_path):
    p = tmp_path / "mystery.csv"
    p.write_text(_kline_csv(candles))
    with pytest.raises(ConfigError, match="mystery.csv: cannot tell the symbol/timeframe"):
        import_path(data_dir, p)
    (rep,) = import_path(data_dir, p, symbols=["ETH/BTC"], timeframes=["1h"])
    assert rep["symbol"] == "ETH/BTC"


def test_wrong_columns_name_the_file_and_leave_store_untouched(candles, data_dir, tmp_path):
    write_parquet_atomic(make_ohlcv(10, "1h"), series_path(data_dir, "binance", "BTC/USDT", "1h"))
    before = {p: p.read_bytes() for p in data_dir.rglob("*.parquet")}
    good = _write_freqtrade_feather(candles, tmp_path)
    bad = tmp_path / "ETH_USDT-1h.feather"
    candles.rename(columns={"timestamp": "date"}).drop(columns=["close", "volume"]).to_feather(bad)
    for target in (tmp_path, bad):  # the good file in the folder is not written either
        with pytest.raises(
            DataError, match=r"ETH_USDT-1h\.feather: missing column\(s\) close, volume"
        ):
            import_path(data_dir, target)
        assert {p: p.read_bytes() for p in data_dir.rglob("*.parquet")} == before
    assert good.exists()


def test_missing_path_and_unsupported_type(data_dir, tmp_path):
    with pytest.raises(DataError, match="nowhere.csv not found"):
        import_path(data_dir, tmp_path / "nowhere.csv")
    p = tmp_path / "notes.txt"
    p.write_text("hi")
    with pytest.raises(DataError, match="unsupported file type"):
        import_path(data_dir, p)


def test_import_reference_folder_is_exact(shared_ohlcv, data_dir):
    # its speed is measured by bench/bench_fetch.py (import candles/s), not asserted here
    reports = import_path(data_dir, shared_ohlcv)
    assert len(reports) == 6 and sum(r["rows"] for r in reports) == 3 * (48046 + 2007)
    for src in shared_ohlcv.glob("*.parquet"):
        got = pd.read_parquet(data_dir / "ohlcv" / "binance" / src.name)
        pd.testing.assert_frame_equal(got, pd.read_parquet(src), check_exact=True)


def test_symbol_and_timeframe_select_files_in_a_folder(candles, data_dir, tmp_path):
    _write_freqtrade_feather(candles, tmp_path)
    daily = make_ohlcv(20, "1d", seed=2)
    daily.rename(columns={"timestamp": "date"}).to_feather(tmp_path / "ETH_USDT-1d.feather")
    (rep,) = import_path(data_dir, tmp_path, timeframes=["1d"])
    assert (rep["symbol"], rep["timeframe"], rep["rows"]) == ("ETH/USDT", "1d", 20)
    assert not series_path(data_dir, "binance", "BTC/USDT", "1h").exists()
    with pytest.raises(DataError, match="no candle file matches"):
        import_path(data_dir, tmp_path, symbols=["LTC/USDT"])


def test_a_derivative_parquet_name_tells_its_symbol(candles, data_dir, tmp_path):
    """BTC-USDT-USDT_1h.parquet (the store's own name of BTC/USDT:USDT) imports as that
    perpetual, without --symbol: the inverse of symbol_slug, not a first-dash guess."""
    p = tmp_path / "BTC-USDT-USDT_1h.parquet"
    candles.to_parquet(p)
    (report,) = import_path(data_dir, p)
    assert report["symbol"] == "BTC/USDT:USDT" and report["timeframe"] == "1h"
    stored = load_series(data_dir, "binance", "BTC/USDT:USDT", "1h")
    assert len(stored) == len(candles)
