"""What fetch accepts and what it tells the user to run next.

Issue 25: 11 (a perpetual or dated future gets its own file), 16 (a malformed
CRYPTOCAST_EXCHANGE_URL is a one-line error). Issue 26, point 4: hints carry the user's
exchange/symbol/timeframe and work when pasted; one timeframe parser for every command; a
``--since`` in the future fails at once.
"""

from __future__ import annotations

import re
import shlex
import time

import pytest
from typer.testing import CliRunner

from cryptocast.cli import app
from cryptocast.config.names import symbol_from_slug, symbol_slug
from cryptocast.config.timeframes import SUPPORTED, validate_timeframe
from cryptocast.data.store import load_series, series_path, store_candles
from cryptocast.errors import ConfigError
from tests.conftest import make_ohlcv
from tests.fake_exchange import FakeExchange


def _run(*args: str, env: dict | None = None):
    return CliRunner().invoke(app, list(args), env=env)


def _one_line(text: str) -> str:
    return " ".join(text.split())


# ---- issue 25, point 11: derivatives have their own slug ---------------------------------------
@pytest.mark.parametrize(
    ("symbol", "slug"),
    [("BTC/USDT", "BTC-USDT"), ("eth/usdt", "ETH-USDT"), ("1000SATS/USDT", "1000SATS-USDT")],
)
def test_spot_slugs_are_unchanged(symbol, slug):
    assert symbol_slug(symbol) == slug


def test_perpetuals_and_dated_futures_never_share_the_spot_file(data_dir):
    symbols = ["BTC/USDT", "BTC/USDT:USDT", "BTC/USDT:USDT-250627", "BTC/USD:BTC-250627"]
    slugs = [symbol_slug(s) for s in symbols]
    assert len(set(slugs)) == len(symbols), slugs
    assert [symbol_from_slug(s) for s in slugs] == symbols  # the file name tells the market
    for i, sym in enumerate(symbols):
        store_candles(data_dir, "bybit", sym, "1d", make_ohlcv(30, "1d", seed=i))
    for i, sym in enumerate(symbols):
        assert load_series(data_dir, "bybit", sym, "1d").equals(make_ohlcv(30, "1d", seed=i))
    assert len({series_path(data_dir, "bybit", s, "1d") for s in symbols}) == len(symbols)


@pytest.mark.parametrize("bad", ["BTC/USDT:", "BTC/USDT:USDT-", "BTC/USDT:US/DT", "BTC/USDT:../x"])
def test_malformed_derivative_symbols_are_refused(bad):
    with pytest.raises(ConfigError, match="BASE/QUOTE"):
        symbol_slug(bad)


# ---- issue 25, point 16: a malformed exchange URL ----------------------------------------------
@pytest.mark.parametrize("url", ["http://[::1", "http://127.0.0.1:99999", "http://host:port/"])
def test_a_malformed_exchange_url_is_one_line_naming_the_variable(data_dir, url):
    res = _run(
        "fetch", "-s", "BTC/USDT", "-t", "1d", "--data-dir", str(data_dir),
        env={"CRYPTOCAST_EXCHANGE_URL": url},
    )  # fmt: skip
    assert res.exit_code == 2, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    assert "CRYPTOCAST_EXCHANGE_URL" in res.stderr and url in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr


# ---- issue 26, point 4: hints that lead somewhere ----------------------------------------------
def test_the_missing_candles_hint_keeps_the_exchange(data_dir):
    res = _run(
        "features", "--exchange", "binanse", "-s", "BTC/USDT", "-t", "1d",
        "--data-dir", str(data_dir),
    )  # fmt: skip
    assert res.exit_code == 3, res.output
    hint = re.search(r"`(cryptocast fetch [^`]*)`", res.stderr)
    assert hint, res.stderr
    argv = shlex.split(hint[1])
    assert argv[argv.index("--exchange") + 1] == "binanse"
    assert argv[argv.index("--symbol") + 1] == "BTC/USDT"
    assert argv[argv.index("--timeframe") + 1] == "1d"
    assert argv[argv.index("--data-dir") + 1] == str(data_dir)


def test_the_missing_candles_hint_works_when_pasted(tmp_path):
    data_dir = tmp_path / "my data"  # a folder name that needs quoting in a shell
    with FakeExchange() as fx:
        fx.set_series("ETH", "USDT", "1h", make_ohlcv(600, "1h", start="2021-01-01"))
        res = _run("features", "-s", "ETH/USDT", "-t", "1h", "--data-dir", str(data_dir))
        assert res.exit_code == 3, res.output
        hint = re.search(r"`cryptocast (fetch [^`]*)`", _one_line(res.stderr))
        assert hint, res.stderr
        pasted = _run(*shlex.split(hint[1]), "--since", "2021-01-01",
                      env={"CRYPTOCAST_EXCHANGE_URL": fx.url})  # fmt: skip
        assert pasted.exit_code == 0, pasted.output
    res = _run("features", "-s", "ETH/USDT", "-t", "1h", "--data-dir", str(data_dir))
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize(("spelled", "canonical"), [("60m", "1h"), ("24h", "1d"), ("7d", "1w")])
def test_one_timeframe_parser_rejects_other_spellings_naming_the_canonical_one(
    spelled, canonical, data_dir
):
    with pytest.raises(ConfigError, match=f"write it as {canonical}"):
        validate_timeframe(spelled)
    for args in (
        ["features", "-s", "BTC/USDT", "-t", spelled],
        ["train", "--set", f"data.timeframe={spelled}"],
        ["fetch", "-s", "BTC/USDT", "-t", spelled, "--exchange-url", "http://127.0.0.1:9"],
    ):
        res = _run(*args, "--data-dir", str(data_dir))
        assert res.exit_code == 2, (args, res.output)
        assert f"write it as {canonical}" in _one_line(res.stderr), (args, res.stderr)


@pytest.mark.parametrize("tf", ["7h", "2d", "0m", "1M", ""])
def test_timeframes_outside_the_supported_list_are_refused_with_the_list(tf):
    with pytest.raises(ConfigError, match=re.escape(", ".join(SUPPORTED))):
        validate_timeframe(tf)


def test_a_since_in_the_future_fails_at_once_without_the_network(data_dir):
    with FakeExchange() as fx:
        t0 = time.monotonic()
        res = _run(
            "fetch", "-s", "BTC/USDT", "-t", "1d", "--since", "2030-01-01",
            "--exchange-url", fx.url, "--data-dir", str(data_dir),
        )  # fmt: skip
        took = time.monotonic() - t0
        assert sum(fx.counts.values()) == 0
    assert res.exit_code == 2, res.output
    assert "--since 2030-01-01 is in the future" in _one_line(res.stderr)
    assert took < 3
