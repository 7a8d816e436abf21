"""What ``call_with_retry`` retries: exchange faults only, never a Python bug (issue 25, point 10).

Through real ccxt against the fake exchange: a malformed answer that makes ccxt itself raise a
``TypeError``, and bugs injected into the parse path, must surface at once as what they are; a
garbled answer (not JSON, rows without prices) is an exchange fault and is retried as one.
"""

from __future__ import annotations

import random

import pytest

from cryptocast.data.exchange import RetryPolicy, make_exchange
from cryptocast.data.fetch import fetch_many
from cryptocast.errors import ExchangeError
from tests.conftest import make_ohlcv
from tests.fake_exchange import FakeExchange

KLINES, INFO = "/api/v3/klines", "/api/v3/exchangeInfo"


def _policy() -> RetryPolicy:
    return RetryPolicy(attempts=3, sleep=lambda s: None, rng=random.Random(0))


@pytest.fixture
def fx():
    with FakeExchange() as server:
        server.set_series("BTC", "USDT", "1h", make_ohlcv(50, "1h", start="2021-01-01"))
        yield server


def _fetch(fx, data_dir, **kw):
    return fetch_many(
        data_dir, "binance", ["BTC/USDT"], ["1h"], "2021-01-01", exchange_url=fx.url,
        retry=_policy(), **kw,
    )  # fmt: skip


def test_a_malformed_answer_that_makes_ccxt_raise_type_error_is_not_retried(fx, data_dir):
    info = fx.exchange_info()
    info["symbols"][0]["filters"] = [{"filterType": ["PRICE_FILTER"]}]  # ccxt: unhashable list
    fx.serve_raw(INFO, info)
    with pytest.raises(TypeError, match="unhashable"):
        _fetch(fx, data_dir)
    assert fx.counts[INFO] == 1  # asked once: a parser crash is a bug, not a network fault


def _index_bug(ohlcv, market=None):
    return [ohlcv[12]]  # Binance klines have 12 fields: IndexError


def _key_bug(ohlcv, market=None):
    return [{"t": ohlcv[0]}["open"]]


def _type_bug(ohlcv, market=None):
    return [ohlcv["open"]]  # a list indexed by a name


@pytest.mark.parametrize(
    ("bug", "error"), [(_index_bug, IndexError), (_key_bug, KeyError), (_type_bug, TypeError)]
)
def test_a_bug_in_the_parse_path_is_raised_at_once(fx, data_dir, bug, error):
    ex = make_exchange("binance", fx.url)
    ex.parse_ohlcv = bug
    with pytest.raises(error):
        _fetch(fx, data_dir, exchange=ex)
    assert fx.counts[KLINES] == 1


@pytest.mark.parametrize(
    "body",
    [
        '[[1609459200000,"1.0","2.0"',  # cut off: not JSON (ccxt hands back the text)
        '{"rows": []}',  # JSON, but not a list of klines
        '[[1609459200000,null,"2","0.5","1","5",1609462799999]]',  # a kline without its open
    ],
)
def test_a_garbled_answer_is_retried_as_an_exchange_fault(fx, data_dir, body):
    fx.serve_raw(KLINES, body)
    rep = _fetch(fx, data_dir)[0]
    assert fx.counts[KLINES] == 3
    assert rep.error_type is ExchangeError
    assert "still failing after 3 attempts" in rep.error and "BadResponse" in rep.error


def test_a_garbled_market_list_is_retried_not_taken_for_an_unknown_symbol(fx, data_dir):
    fx.serve_raw(INFO, '{"symbols": [')
    rep = _fetch(fx, data_dir)[0]
    assert fx.counts[INFO] == 3
    assert rep.error_type is ExchangeError and "BadResponse" in rep.error
