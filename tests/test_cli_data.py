"""`cryptocast fetch` / `cryptocast data` through CliRunner against the fake exchange."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from typer.testing import CliRunner

from cryptocast.cli import app
from cryptocast.data.store import series_path, write_parquet_atomic
from tests.conftest import make_ohlcv
from tests.fake_exchange import FakeExchange

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ")  # cron logs: every run's lines are dated


@pytest.fixture
def fx():
    with FakeExchange() as server:
        server.set_series("BTC", "USDT", "1h", make_ohlcv(1500, "1h", start="2022-01-01"))
        server.set_series("BTC", "USDT", "1d", make_ohlcv(400, "1d", start="2022-01-01", seed=1))
        server.set_series("ETH", "USDT", "1d", make_ohlcv(400, "1d", start="2022-01-01", seed=2))
        yield server


def _run(*args: str, env: dict | None = None):
    return CliRunner().invoke(app, list(args), env=env)


def _snapshot(data_dir):
    return {p: p.read_bytes() for p in data_dir.rglob("*") if p.is_file() and p.name != ".lock"}


def test_fetch_then_data_shows_the_series(fx, data_dir):
    env = {"CRYPTOCAST_EXCHANGE_URL": fx.url, "CRYPTOCAST_DATA_DIR": str(data_dir)}
    res = _run(
        "fetch", "-s", "BTC/USDT", "-s", "ETH/USDT", "-t", "1d", "--since", "2022-01-01", env=env
    )
    assert res.exit_code == 0, res.output
    assert "BTC/USDT 1d" in res.output and "ETH/USDT 1d" in res.output
    first = res.output.strip().splitlines()[0]
    assert STAMP.match(first), res.output  # the run's first line starts with the UTC time
    assert series_path(data_dir, "binance", "ETH/USDT", "1d").is_file()
    res = _run("data", "--data-dir", str(data_dir))
    assert res.exit_code == 0, res.output
    assert "BTC/USDT 1d" in res.output and "400" in res.output


def test_one_failing_series_gives_partial_failure_exit(fx, data_dir):
    res = _run(
        "fetch", "-s", "BTC/USDT", "-s", "DOGE/USDT", "-t", "1d", "--since", "2022-01-01",
        "--exchange-url", fx.url, "--data-dir", str(data_dir),
    )  # fmt: skip
    assert res.exit_code == 8, res.output
    assert "DOGE/USDT" in res.output and "1 of 2 series failed" in res.output
    lines = res.output.strip().splitlines()
    assert STAMP.match(lines[0]) and all(STAMP.match(ln) for ln in lines if "error:" in ln)
    assert series_path(data_dir, "binance", "BTC/USDT", "1d").is_file()


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["-s", "XRP/USDT", "-t", "1d"], 2, "unknown symbol 'XRP/USDT'"),
        (["-s", "BTC/USDT", "-t", "7x"], 2, "unknown timeframe '7x'"),
        (["--exchange", "notanexchange"], 2, "unknown exchange 'notanexchange'"),
        (["--since", "2023-01-01", "--until", "2022-01-01"], 2, "--since 2023-01-01 is not before"),
        (["-s", "BTC/USDT", "-t", "1d"], 3, "BTC-USDT_1d.parquet is unreadable"),
    ],
)
def test_bad_inputs_one_line_error_and_store_untouched(fx, data_dir, args, code, needle):
    write_parquet_atomic(make_ohlcv(5, "1h"), series_path(data_dir, "binance", "BTC/USDT", "1h"))
    series_path(data_dir, "binance", "BTC/USDT", "1d").write_bytes(b"corrupt, not parquet")
    before = _snapshot(data_dir)
    res = _run("fetch", *args, "--exchange-url", fx.url, "--data-dir", str(data_dir))
    assert res.exit_code == code, res.output
    errors = [ln for ln in res.output.splitlines() if "error:" in ln]
    assert errors and needle in errors[-1]
    assert all(STAMP.match(ln) for ln in errors), errors
    assert _snapshot(data_dir) == before


def test_import_with_wrong_columns_is_rejected(data_dir, tmp_path):
    write_parquet_atomic(make_ohlcv(5, "1h"), series_path(data_dir, "binance", "BTC/USDT", "1h"))
    before = _snapshot(data_dir)
    bad = tmp_path / "BTC_USDT-1h.feather"
    make_ohlcv(10, "1h").rename(columns={"timestamp": "date", "close": "last"}).to_feather(bad)
    res = _run("fetch", "--import", str(bad), "--data-dir", str(data_dir))
    assert res.exit_code == 3
    assert "BTC_USDT-1h.feather: missing column(s) close" in res.output
    assert _snapshot(data_dir) == before


def test_import_reference_folder_then_data(shared_ohlcv, data_dir):
    res = _run("fetch", "--import", str(shared_ohlcv), "--data-dir", str(data_dir), "-t", "1d")
    assert res.exit_code == 0, res.output
    assert res.output.count("2,007") >= 3
    res = _run("data", "--data-dir", str(data_dir), "-s", "ETH/USDT")
    assert "ETH/USDT 1d" in res.output and "BTC/USDT" not in res.output


def test_data_on_empty_and_corrupt_store(data_dir):
    res = _run("data", "--data-dir", str(data_dir))
    assert res.exit_code == 0 and "no candles stored" in res.output
    p = series_path(data_dir, "binance", "BTC/USDT", "1h")
    p.parent.mkdir(parents=True)
    p.write_bytes(b"junk")
    res = _run("data", "--data-dir", str(data_dir))
    assert res.exit_code == 3 and "unreadable" in res.output


@pytest.mark.parametrize("command", ["fetch", "data"])
def test_every_data_command_has_help(command):
    res = _run(command, "--help")
    assert res.exit_code == 0
    doc = app.registered_commands
    assert any(c.name == command or c.callback.__name__ == command for c in doc)
    assert "--data-dir" in res.output and len(res.output.splitlines()) > 8


def test_data_table_reads_at_80_columns():
    """Every figure whole at 80 columns (the full table there showed blank number columns)."""
    from rich.console import Console

    from cryptocast.cli.data_cmds import integrity_table
    from cryptocast.cli.tables import print_table

    base = {"exchange": "binance", "symbol": "BTC/USDT", "rows": 48046, "gaps": 27,
            "missing": 122, "largest_gap": 33, "duplicates_dropped": 0, "zero_volume": 3,
            "ohlc_violations": 0, "new_candles": 48046, "requests": 50,
            "first": pd.Timestamp("2018-01-01", tz="UTC"),
            "last": pd.Timestamp("2023-06-30 23:00", tz="UTC")}  # fmt: skip
    rows = [{**base, "timeframe": "1h"}]
    rows.append({**base, "timeframe": "1d", "rows": 2007, "gaps": 0, "zero_volume": 0})
    extra = (("new_candles", "new"), ("requests", "requests"))
    for ex in ((), extra):
        console = Console(record=True, width=80, force_terminal=True, color_system=None)
        print_table(
            console,
            integrity_table(rows, "stored candles in data/ohlcv", ex),
            lambda ex=ex: integrity_table(rows, "stored candles in data/ohlcv", ex, compact=True),
        )
        text = console.export_text()
        assert "…" not in text and max(map(len, text.splitlines())) <= 80, text
        for figure in ("48,046 rows", "2,007 rows", "27 gaps (122 missing, largest 33)",
                       "3 zero-volume", "2023-06-30 23:00", "check", "ok"):  # fmt: skip
            assert figure in " ".join(text.split()), (figure, text)
        if ex:
            assert "50 requests" in text
