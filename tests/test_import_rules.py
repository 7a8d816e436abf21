"""Import rules of issue 25: unclosed and inconsistent candles (9), candle spacing and volume jumps
(18), files too large or too deep to read (16), and what a re-import reports (issue 26, point 8)."""

from __future__ import annotations

import json
import zipfile

import pandas as pd
import pytest
from typer.testing import CliRunner

from cryptocast.cli import app
from cryptocast.data.importers import import_path
from cryptocast.data.store import load_series, series_path, write_parquet_atomic
from cryptocast.errors import DataError
from tests.conftest import make_ohlcv

DAY = 86_400_000
HOUR = 3_600_000
JAN1 = 1_672_531_200_000  # 2023-01-01 00:00 UTC in ms


def _klines(rows: list[list]) -> str:
    return "\n".join(",".join(str(v) for v in r) for r in rows) + "\n"


def _kline_row(t: int, o=1.0, h=2.0, lo=0.5, c=1.5, v=10.0, period=DAY) -> list:
    return [t, o, h, lo, c, v, t + period - 1, 0, 1, 0, 0, 0]


def _snapshot(data_dir):
    return {p: p.read_bytes() for p in data_dir.rglob("*") if p.is_file() and p.name != ".lock"}


# ---- point 9: a candle still open when the file was written is refused -------------------------
def test_candle_not_yet_closed_is_refused_by_the_cryptocast_now_clock(
    data_dir, tmp_path, monkeypatch
):
    path = tmp_path / "BTCUSDT-1d-2023-01.csv"
    path.write_text(_klines([_kline_row(JAN1), _kline_row(JAN1 + DAY)]))  # Jan 1 and Jan 2
    monkeypatch.setenv("CRYPTOCAST_NOW", "2023-01-02T15:00")  # a mid-day export of Jan 2
    with pytest.raises(DataError, match=r"row 2: the candle opening 2023-01-02 .* is not closed"):
        import_path(data_dir, path)
    assert _snapshot(data_dir) == {}
    res = CliRunner().invoke(app, ["fetch", "--import", str(path), "--data-dir", str(data_dir)])
    assert res.exit_code == 3 and "not closed" in res.output
    monkeypatch.setenv("CRYPTOCAST_NOW", "2023-01-03T00:00")  # once Jan 2 has closed: accepted
    (rep,) = import_path(data_dir, path)
    assert rep["rows"] == 2


@pytest.mark.parametrize(
    ("row", "rule"),
    [
        (dict(h=0.4, lo=0.5), r"high 0\.4 is below low 0\.5"),
        (dict(o=2.5), r"open 2\.5 is outside \[low 0\.5, high 2\]"),
        (dict(c=0.3), r"close 0\.3 is outside \[low 0\.5, high 2\]"),
    ],
)
def test_internally_inconsistent_row_is_refused_naming_file_and_row(row, rule, data_dir, tmp_path):
    path = tmp_path / "BTCUSDT-1d-2023-02.csv"
    path.write_text(_klines([_kline_row(JAN1), _kline_row(JAN1 + DAY, **row)]))
    with pytest.raises(DataError, match=rf"BTCUSDT-1d-2023-02\.csv: row 2: {rule}"):
        import_path(data_dir, path)
    assert _snapshot(data_dir) == {}


# ---- point 18: candle spacing against the timeframe's grid; volume jumps flagged ---------------
def test_daily_candles_in_an_hourly_file_are_refused(data_dir, tmp_path):
    path = tmp_path / "BTCUSDT-1h-2023-01.csv"  # says 1h, holds daily candles at 00:00
    path.write_text(_klines([_kline_row(JAN1 + i * DAY) for i in range(10)]))
    with pytest.raises(
        DataError, match=r"open times are all a multiple of 1d apart .* not 1h candles"
    ):
        import_path(data_dir, path)
    assert _snapshot(data_dir) == {}


def test_hourly_file_with_gaps_still_imports(data_dir, tmp_path):
    path = tmp_path / "BTCUSDT-1h-2023-01.csv"
    times = [JAN1 + h * HOUR for h in (0, 1, 2, 5, 6, 30)]  # gaps, but some neighbours 1h apart
    path.write_text(_klines([_kline_row(t, period=HOUR) for t in times]))
    (rep,) = import_path(data_dir, path)
    assert rep["rows"] == 6 and rep["gaps"] == 2


def test_a_volume_jump_of_a_daily_candle_among_hourly_ones_is_flagged(data_dir, tmp_path):
    candles = make_ohlcv(72, "1h", start="2023-01-01", seed=5)
    candles.loc[40, "volume"] = candles["volume"].iloc[16:64].median() * 25  # a day's volume
    path = tmp_path / "BTC-USDT_1h.parquet"
    candles.to_parquet(path)
    (rep,) = import_path(data_dir, path)
    assert rep["volume_jumps"] == 1
    res = CliRunner().invoke(app, ["data", "--data-dir", str(data_dir)])
    assert res.exit_code == 0 and "check" in res.output and "1 volume jump" in res.output, (
        res.output
    )


# ---- point 16: inputs that are too large or too deep ------------------------------------------
def test_a_2_gb_csv_is_refused_by_size_before_reading(data_dir, tmp_path):
    path = tmp_path / "BTCUSDT-1h-2023-01.csv"
    with open(path, "wb") as fh:  # sparse: 2 GB long, nothing written to disk
        fh.truncate(2 * 1024**3)
    with pytest.raises(DataError, match=r"BTCUSDT-1h-2023-01\.csv: 2\.0 GiB, over the .* limit"):
        import_path(data_dir, path)


def test_a_small_zip_holding_a_huge_csv_is_refused_by_its_uncompressed_size(data_dir, tmp_path):
    path = tmp_path / "BTCUSDT-1h-2023-01.zip"
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf,
        zf.open("BTCUSDT-1h-2023-01.csv", "w") as fh,
    ):
        for _ in range(3):
            fh.write(b"0" * 2**20)
    assert path.stat().st_size < 2**16
    with pytest.raises(
        DataError, match=r"zip: BTCUSDT-1h-2023-01\.csv holds 3\.0 MiB, over the 1\.0 MiB limit"
    ):
        import_path(data_dir, path, max_bytes=2**20)


def test_json_nested_100k_deep_is_a_one_line_error(data_dir, tmp_path):
    path = tmp_path / "BTC_USDT-1d.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(DataError, match=r"BTC_USDT-1d\.json: nested too deeply"):
        import_path(data_dir, path)
    res = CliRunner().invoke(app, ["fetch", "--import", str(path), "--data-dir", str(data_dir)])
    assert res.exit_code == 3 and "Traceback" not in res.output


# ---- issue 26 point 8: re-importing the same file reports "unchanged", not duplicates ----------
def test_reimport_reports_unchanged_rows_not_duplicates(data_dir, tmp_path):
    candles = make_ohlcv(30, "1d", start="2023-01-01", seed=2)
    path = tmp_path / "BTC-USDT_1d.parquet"
    candles.to_parquet(path)
    (first,) = import_path(data_dir, path)
    assert (first["new_candles"], first["unchanged"], first["duplicates_dropped"]) == (30, 0, 0)
    (again,) = import_path(data_dir, path)
    assert (again["new_candles"], again["unchanged"], again["duplicates_dropped"]) == (0, 30, 0)
    changed = candles.copy()
    changed.loc[3, "close"] = changed.loc[3, "high"]
    changed.to_parquet(path)
    (fixed,) = import_path(data_dir, path, overwrite=True)
    assert (fixed["new_candles"], fixed["unchanged"], fixed["replaced"]) == (0, 29, 1)
    res = CliRunner().invoke(app, ["fetch", "--import", str(path), "--data-dir", str(data_dir)])
    assert res.exit_code == 0 and "unchanged" in res.output, res.output
    assert (
        load_series(data_dir, "binance", "BTC/USDT", "1d")["close"].iloc[3]
        == changed.loc[3, "close"]
    )


def test_stored_file_is_unchanged_by_a_refused_import(data_dir, tmp_path):
    stored = make_ohlcv(5, "1d", start="2023-01-01")
    write_parquet_atomic(stored, series_path(data_dir, "binance", "BTC/USDT", "1d"))
    path = tmp_path / "BTC_USDT-1d.json"
    path.write_text(json.dumps([_kline_row(JAN1 + 9 * DAY, h=0.1)[:6]]))
    before = _snapshot(data_dir)
    with pytest.raises(DataError, match="row 1: high 0.1 is below low 0.5"):
        import_path(data_dir, path)
    assert _snapshot(data_dir) == before
    pd.testing.assert_frame_equal(load_series(data_dir, "binance", "BTC/USDT", "1d"), stored)


def test_a_config_nested_100k_deep_is_a_one_line_config_error(tmp_path):
    from cryptocast.config.schema import load_config
    from cryptocast.errors import ConfigError

    deep = "[" * 100_000 + "]" * 100_000
    path = tmp_path / "deep.json"  # JSON is YAML: the config loader reads both
    path.write_text('{"model": ' + deep + "}")
    with pytest.raises(ConfigError, match=r"deep\.json: nested too deeply"):
        load_config(path)
    with pytest.raises(ConfigError, match="model.d_model"):
        load_config(None, [f"model.d_model={deep}"])
