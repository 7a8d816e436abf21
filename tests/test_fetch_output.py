"""What fetch prints for cron logs: no terminal escapes from user input, no password, no blank
line (issue 25, point 20; issue 26, point 8)."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from cryptocast.cli import app
from cryptocast.data.exchange import redact_url
from cryptocast.data.store import write_parquet_atomic
from tests.conftest import make_ohlcv
from tests.fake_exchange import FakeExchange

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ")
CLEAR = "\x1b[2J"  # "clear the screen", in a file name


def _run(*args: str, env: dict | None = None):
    return CliRunner().invoke(app, list(args), env=env)


@pytest.fixture
def fx():
    with FakeExchange() as server:
        server.set_series("BTC", "USDT", "1d", make_ohlcv(40, "1d", start="2022-01-01"))
        yield server


def _no_controls(text: str) -> bool:
    return not any(ord(c) < 32 and c != "\n" or 0x7F <= ord(c) < 0xA0 for c in text)


def test_escape_sequences_in_an_import_path_are_printed_escaped(tmp_path, data_dir):
    folder = tmp_path / f"x{CLEAR}\x07y"
    folder.mkdir()
    write_parquet_atomic(make_ohlcv(30, "1d"), folder / "BTC-USDT_1d.parquet")
    res = _run("fetch", "--import", str(folder), "--data-dir", str(data_dir))
    assert res.exit_code == 0, res.output
    assert _no_controls(res.stdout), repr(res.stdout)
    assert "x\\x1b[2J\\x07y" in res.stdout  # shown, not obeyed
    (folder / "ETH-USDT_1d.parquet").write_bytes(b"not parquet")
    res = _run(
        "fetch", "--import", str(folder / "ETH-USDT_1d.parquet"), "--data-dir", str(data_dir)
    )
    assert res.exit_code == 3, res.output
    assert _no_controls(res.stderr) and _no_controls(res.stdout), repr(res.output)
    assert "x\\x1b[2J\\x07y" in res.stderr


def test_redact_url_hides_only_the_password():
    assert redact_url("GET http://u:s3cr%40t@h:1/api x https://h/p") == (
        "GET http://u:***@h:1/api x https://h/p"
    )
    assert redact_url("http://user@host/") == "http://user@host/"


def test_the_exchange_url_password_is_never_printed(fx, data_dir):
    url = fx.url.replace("http://", "http://alice:hunter2@")
    env = {"CRYPTOCAST_EXCHANGE_URL": url, "CRYPTOCAST_DATA_DIR": str(data_dir)}
    res = _run("fetch", "-s", "BTC/USDT", "-t", "1d", "--since", "2022-01-01", env=env)
    assert res.exit_code == 0, res.output
    assert "hunter2" not in res.output and "alice:***@" in res.stdout  # the fetch header
    fx.set_faults(1.0, kinds=("403",), paths=("/api/v3/klines",))  # ccxt quotes the URL
    res = _run("fetch", "-s", "BTC/USDT", "-t", "1d", "--since", "2021-01-01", env=env)
    assert res.exit_code == 4, res.output
    assert "hunter2" not in res.output and "alice:***@" in res.stderr  # the error line


def test_fetch_error_lines_have_no_blank_line(fx, data_dir):
    res = _run(
        "fetch", "-s", "XRP/USDT", "-t", "1d", "--exchange-url", fx.url,
        "--data-dir", str(data_dir),
    )  # fmt: skip
    assert res.exit_code == 2, res.output
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and STAMP.match(lines[0]), repr(res.stderr)
    assert lines[0].endswith(
        "error: unknown symbol 'XRP/USDT' on binance; markets include BTC/USDT"
    )
    res = _run(
        "fetch", "-s", "XRP/USDT", "-s", "BTC/USDT", "-t", "1d", "--since", "2022-01-01",
        "--exchange-url", fx.url, "--data-dir", str(data_dir),
    )  # fmt: skip
    assert res.exit_code == 8, res.output
    lines = res.stderr.splitlines()
    assert len(lines) == 2 and all(STAMP.match(ln) for ln in lines), repr(res.stderr)
    assert STAMP.match(res.stdout) and "fetched from binance" in res.stdout.splitlines()[0]
