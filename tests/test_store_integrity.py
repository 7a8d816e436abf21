"""The stored candles guard themselves: a content checksum per series verified on read (issue 25
point 19), disk-full errors that name the file and `data` filters that are checked (point 21)."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cryptocast.cli import app
from cryptocast.data.store import read_ohlcv, series_path, store_candles
from cryptocast.errors import DataError
from tests.conftest import make_ohlcv


def _flip_a_bit_that_changes_a_close(path: Path) -> None:
    """Flip one real bit of the close column's data so that a plain Parquet reader still reads
    the file, but a close differs: the silent kind of bit rot."""
    original = pd.read_parquet(path)
    meta = pq.ParquetFile(path).metadata
    col = next(
        meta.row_group(0).column(i)
        for i in range(meta.num_columns)
        if meta.row_group(0).column(i).path_in_schema == "close"
    )
    data = bytearray(path.read_bytes())
    for pos in range(col.data_page_offset, col.data_page_offset + col.total_compressed_size):
        data[pos] ^= 0x10
        try:  # a plain read, in memory, with no page checksum verification
            got = pq.read_table(pa.BufferReader(bytes(data))).to_pandas()
        except Exception:  # noqa: BLE001 (this flip breaks the page; try the next byte)
            got = None
        if got is not None and not got["close"].equals(original["close"]):
            assert got.drop(columns="close").equals(original.drop(columns="close"))
            path.write_bytes(bytes(data))
            return
        data[pos] ^= 0x10
    raise AssertionError("no silent bit flip found in the close column")


def test_a_flipped_bit_in_a_stored_close_is_caught_naming_the_file(data_dir):
    store_candles(data_dir, "binance", "BTC/USDT", "1d", make_ohlcv(200, "1d"))
    path = series_path(data_dir, "binance", "BTC/USDT", "1d")
    _flip_a_bit_that_changes_a_close(path)
    with pytest.raises(DataError, match=rf"{path}: .*checksum.*restore it from a backup"):
        read_ohlcv(path)
    res = CliRunner().invoke(app, ["data", "--data-dir", str(data_dir)])
    assert res.exit_code == 3 and "checksum" in res.output


def test_an_edit_that_keeps_the_page_crcs_valid_is_caught_by_the_content_checksum(data_dir):
    store_candles(data_dir, "binance", "BTC/USDT", "1d", make_ohlcv(30, "1d"))
    path = series_path(data_dir, "binance", "BTC/USDT", "1d")
    table = pq.read_table(path)
    close = table.column("close").to_numpy().copy()
    close[7] *= 1.5  # a tool rewrote the file, copying its metadata
    edited = table.set_column(table.schema.get_field_index("close"), "close", pa.array(close))
    pq.write_table(edited, path, write_page_checksum=True)
    with pytest.raises(DataError, match="do not match the checksum stored with them"):
        read_ohlcv(path)


def test_the_checksum_travels_with_every_write_and_files_without_one_still_read(data_dir):
    candles = make_ohlcv(50, "1d")
    path = series_path(data_dir, "binance", "BTC/USDT", "1d")
    path.parent.mkdir(parents=True)
    candles.to_parquet(path)  # written by an older cryptocast: no checksum yet
    pd.testing.assert_frame_equal(read_ohlcv(path), candles)
    store_candles(data_dir, "binance", "BTC/USDT", "1d", make_ohlcv(60, "1d"))
    assert b"cryptocast.sha256" in pq.ParquetFile(path).schema_arrow.metadata
    assert len(read_ohlcv(path)) == 60


@contextlib.contextmanager
def _tmpfs(where: Path, size: str):
    where.mkdir()
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError) as err:
        pytest.skip(f"cannot mount a tmpfs here ({err}); needs root or CAP_SYS_ADMIN")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


def test_disk_full_names_the_file_and_keeps_the_stored_one(tmp_path):
    with _tmpfs(tmp_path / "small", "1m") as root:
        data = root / "data"
        store_candles(data, "binance", "BTC/USDT", "1h", make_ohlcv(100, "1h"))
        path = series_path(data, "binance", "BTC/USDT", "1h")
        before = path.read_bytes()
        big = make_ohlcv(60_000, "1h", start="2020-01-06")
        with pytest.raises(OSError) as err:
            store_candles(data, "binance", "BTC/USDT", "1h", big)
        assert err.value.errno == 28 and err.value.filename == str(path)
        assert path.read_bytes() == before and [p.name for p in path.parent.iterdir()] == [
            path.name
        ]
        big.to_parquet(tmp_path / "BTC-USDT_1h.parquet")
        res = CliRunner().invoke(
            app,
            ["fetch", "--import", str(tmp_path / "BTC-USDT_1h.parquet"), "--data-dir", str(data)],
        )
        assert res.exit_code == 9, res.output
        assert f"{path}: the disk is full" in " ".join(res.output.split())


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["-t", "7h"], "7h"),
        (["-s", "XRP/USDT"], "XRP/USDT"),
        (["-s", "BTCUSDT"], "BTCUSDT"),
        (["--exchange", "kraken"], "kraken"),
    ],
)
def test_data_filter_that_matches_nothing_is_exit_2_naming_it(args, needle, data_dir):
    store_candles(data_dir, "binance", "BTC/USDT", "1d", make_ohlcv(20, "1d"))
    res = CliRunner().invoke(app, ["data", "--data-dir", str(data_dir), *args])
    assert res.exit_code == 2, res.output
    assert needle in res.output and "no candles stored" not in res.output
    assert len(res.output.strip().splitlines()) == 1
