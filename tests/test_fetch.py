"""Fetching through real ccxt against the fake Binance (tests/fake_exchange.py): no mocks."""

from __future__ import annotations

import math
import random
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pandas as pd
import pytest

from cryptocast.data.exchange import RetryPolicy, call_with_retry, make_exchange
from cryptocast.data.fetch import fetch_many, fetch_series
from cryptocast.data.store import load_series, series_path
from cryptocast.errors import ConfigError, DataError, ExchangeError, LockedError
from tests.conftest import data_lock_held_elsewhere, make_ohlcv
from tests.fake_exchange import FakeExchange

SYMBOLS = ["BTC/USDT", "ETH/USDT", "LTC/USDT"]
FAST = RetryPolicy(attempts=12, base_delay=0.001, max_delay=0.01, rng=random.Random(0))
KLINES = "/api/v3/klines"


@pytest.fixture
def fx():
    with FakeExchange() as server:
        yield server


def _serve_synthetic(fx: FakeExchange, n: int = 3500, timeframe: str = "1h") -> pd.DataFrame:
    df = make_ohlcv(
        n, timeframe=timeframe, start="2021-01-01", drop=[i for i in (10, 11, 2500) if i < n]
    )
    fx.set_series("BTC", "USDT", timeframe, df)
    return df


def _start_times(fx: FakeExchange) -> list[int]:
    return [
        int(parse_qs(urlparse(p).query)["startTime"][0]) for p in fx.log if p.startswith(KLINES)
    ]


def test_fetch_reference_data_is_identical_with_expected_request_count(fx, shared_ohlcv, data_dir):
    fx.load_folder(shared_ohlcv)
    reports = fetch_many(
        data_dir, "binance", SYMBOLS, ["1h", "1d"], exchange_url=fx.url, retry=FAST
    )
    assert [r.error for r in reports] == [None] * 6
    expected_requests = 0
    for r in reports:
        src = pd.read_parquet(shared_ohlcv / r.path.name)
        got = pd.read_parquet(r.path)
        pd.testing.assert_frame_equal(got, src, check_exact=True)
        assert r.new_candles == len(src)
        # full pages plus one closing request that finds nothing new
        assert r.requests == math.ceil(len(src) / 1000) + 1
        expected_requests += r.requests
    assert fx.counts[KLINES] == expected_requests
    assert fx.counts["/api/v3/exchangeInfo"] == 1  # markets loaded once for all six series
    btc = reports[0].integrity
    assert (btc["rows"], btc["gaps"], btc["missing"], btc["zero_volume"]) == (48046, 27, 122, 3)


def test_incremental_fetch_requests_only_the_new_range(fx, data_dir, tmp_path):
    full = _serve_synthetic(fx)
    fx.set_series("BTC", "USDT", "1h", full.iloc[:2000])
    first = fetch_series(data_dir, "binance", "BTC/USDT", "1h", "2021-01-01", exchange_url=fx.url)
    assert first.new_candles == 2000
    last_ms = int(full["timestamp"].iloc[1999].value // 1_000_000)

    fx.set_series("BTC", "USDT", "1h", full)
    fx.reset_counts()
    second = fetch_series(data_dir, "binance", "BTC/USDT", "1h", "2021-01-01", exchange_url=fx.url)
    assert second.new_candles == len(full) - 2000
    starts = _start_times(fx)
    assert starts[0] == last_ms + 3_600_000  # resumes right after the last stored candle
    assert len(starts) == math.ceil((len(full) - 2000) / 1000) + 1

    fresh = tmp_path / "fresh"
    fetch_series(fresh, "binance", "BTC/USDT", "1h", "2021-01-01", exchange_url=fx.url)
    stored = load_series(data_dir, "binance", "BTC/USDT", "1h")
    assert stored.equals(load_series(fresh, "binance", "BTC/USDT", "1h"))
    assert stored.equals(full.reset_index(drop=True))

    fx.reset_counts()  # nothing new: one request, file untouched
    again = fetch_series(data_dir, "binance", "BTC/USDT", "1h", "2021-01-01", exchange_url=fx.url)
    assert again.new_candles == 0 and fx.counts[KLINES] == 1


def test_open_candle_is_dropped_then_stored_once_closed(fx, data_dir):
    df = _serve_synthetic(fx, n=50)
    last_open = int(df["timestamp"].iloc[-1].value // 1_000_000)
    now = last_open + 3_600_000 - 1  # the last served candle is still open
    kw = {"exchange_url": fx.url, "since": "2021-01-01"}
    rep = fetch_series(data_dir, "binance", "BTC/USDT", "1h", now_ms=now, **kw)
    assert rep.integrity["last"] == df["timestamp"].iloc[-2]
    rep = fetch_series(data_dir, "binance", "BTC/USDT", "1h", now_ms=now + 1, **kw)
    assert rep.new_candles == 1 and rep.integrity["last"] == df["timestamp"].iloc[-1]


def test_mixed_faults_give_the_same_result_as_a_clean_fetch(fx, data_dir, tmp_path):
    _serve_synthetic(fx, n=12_000)
    fx.set_series("ETH", "USDT", "1d", make_ohlcv(1500, "1d", start="2019-01-01", seed=3))
    kw = {"since": "2019-01-01", "exchange_url": fx.url, "retry": FAST, "timeout_ms": 250}
    clean = tmp_path / "clean"
    fetch_many(clean, "binance", ["BTC/USDT", "ETH/USDT"], ["1h", "1d"], **kw)

    fx.set_faults(0.3, seed=7, slow_s=0.6)
    fx.reset_counts()
    reports = fetch_many(data_dir, "binance", ["BTC/USDT", "ETH/USDT"], ["1h", "1d"], **kw)
    assert [r.error for r in reports] == [None] * 4
    assert sum(fx.fault_counts.values()) >= 5 and len(fx.fault_counts) >= 4  # faults really hit
    for r in reports:
        assert r.path.read_bytes() == (clean / r.path.relative_to(data_dir)).read_bytes()


def test_persistent_faults_fail_one_series_others_continue(fx, data_dir):
    _serve_synthetic(fx, n=100)
    fx.set_faults(1.0, kinds=("503",), paths=(KLINES,))
    policy = RetryPolicy(attempts=3, base_delay=0.001)
    reports = fetch_many(
        data_dir, "binance", ["BTC/USDT"], ["1h"], "2021-01-01", exchange_url=fx.url, retry=policy
    )
    assert reports[0].error_type is ExchangeError
    assert "still failing after 3 attempts" in reports[0].error
    assert fx.counts[KLINES] == 3


def test_unknown_symbol_is_reported_and_other_series_complete(fx, data_dir):
    _serve_synthetic(fx, n=100)
    reports = fetch_many(
        data_dir, "binance", ["XRP/USDT", "BTC/USDT"], ["1h"], "2021-01-01", exchange_url=fx.url
    )
    assert reports[0].error_type is ConfigError and "XRP/USDT" in reports[0].error
    assert reports[1].error is None and reports[1].new_candles == 98


def test_no_retry_on_bad_request_retry_on_timeout():
    import ccxt

    calls = []

    def bad():
        calls.append(1)
        raise ccxt.BadRequest("binance {'code':-1120}")

    with pytest.raises(ConfigError, match="rejected"):
        call_with_retry(bad, FAST, "x")
    assert len(calls) == 1

    def flaky():
        calls.append(1)
        if len(calls) < 4:
            raise ccxt.RequestTimeout("slow")
        return "ok"

    assert call_with_retry(flaky, FAST, "x") == "ok" and len(calls) == 4


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ({"exchange_id": "nope"}, "unknown exchange 'nope'"),
        ({"timeframes": ["7x"]}, "unknown timeframe '7x'"),
        ({"since": "2022-01-01", "until": "2021-01-01"}, "--since 2022-01-01 is not before"),
        ({"since": "yesterday-ish"}, "--since 'yesterday-ish' is not an ISO date"),
        ({"since": "01/02/2023"}, "--since '01/02/2023' is not an ISO date"),
        ({"until": "2023-13-01"}, "--until '2023-13-01' is not a valid date"),
    ],
)
def test_bad_options_raise_config_error_before_any_request(fx, data_dir, args, match):
    kw = {"exchange_id": "binance", "symbols": ["BTC/USDT"], "timeframes": ["1h"]} | args
    with pytest.raises(ConfigError, match=match):
        fetch_many(data_dir, exchange_url=fx.url, **kw)
    assert sum(fx.counts.values()) == 0


def test_corrupt_stored_file_is_never_overwritten(fx, data_dir):
    _serve_synthetic(fx, n=100)
    path = series_path(data_dir, "binance", "BTC/USDT", "1h")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PAR1 garbage")
    with pytest.raises(DataError, match="BTC-USDT_1h.parquet is unreadable"):
        fetch_series(data_dir, "binance", "BTC/USDT", "1h", exchange_url=fx.url)
    assert path.read_bytes() == b"PAR1 garbage"
    assert fx.counts[KLINES] == 0


def test_exchange_url_rewrites_every_api_url():
    ex = make_exchange("binance", "http://127.0.0.1:8999/")
    assert ex.urls["api"]["public"] == "http://127.0.0.1:8999/api/v3"
    assert all(u.startswith("http://127.0.0.1:8999/") for u in ex.urls["api"].values())
    assert ex.enableRateLimit is False
    with pytest.raises(ConfigError, match="not an http"):
        make_exchange("binance", "ftp://x")


@pytest.mark.live
def test_live_binance_recent_daily_candles(tmp_path):
    since = (pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=10)).strftime("%Y-%m-%d")
    rep = fetch_series(Path(tmp_path), "binance", "BTC/USDT", "1d", since)
    assert rep.error is None and 8 <= rep.new_candles <= 10
    assert rep.integrity["last"] < pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=1)


def test_earlier_since_fetches_the_missing_head_and_reports_progress(fx, data_dir):
    full = _serve_synthetic(fx, n=3000)
    fetch_series(data_dir, "binance", "BTC/USDT", "1h", "2021-02-01", exchange_url=fx.url)
    head = int((full["timestamp"] < pd.Timestamp("2021-02-01", tz="UTC")).sum())
    seen: list[tuple[str, int, int]] = []
    rep = fetch_series(
        data_dir, "binance", "BTC/USDT", "1h", "2021-01-01", exchange_url=fx.url,
        progress=lambda key, done, total: seen.append((key, done, total)),
    )  # fmt: skip
    assert rep.new_candles == head
    assert load_series(data_dir, "binance", "BTC/USDT", "1h").equals(full.reset_index(drop=True))
    assert seen[-1] == ("BTC/USDT 1h", head, head)
    assert [d for _, d, _ in seen] == sorted(d for _, d, _ in seen)


def test_fetch_waits_for_the_data_lock(fx, data_dir):
    _serve_synthetic(fx, n=50)
    with (
        data_lock_held_elsewhere(data_dir),
        pytest.raises(LockedError, match="another cryptocast process"),
    ):
        fetch_series(
            data_dir, "binance", "BTC/USDT", "1h", "2021-01-01", exchange_url=fx.url,
            lock_timeout=0.1,
        )  # fmt: skip
    assert not series_path(data_dir, "binance", "BTC/USDT", "1h").exists()


def test_fake_exchange_follows_binance_kline_semantics(fx):
    import json
    import urllib.error
    import urllib.request

    df = _serve_synthetic(fx, n=30)
    ms = (df["timestamp"].astype("int64") // 1_000_000).tolist()

    def get(query: str):
        try:
            with urllib.request.urlopen(f"{fx.url}{KLINES}?{query}") as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    status, rows = get(f"symbol=BTCUSDT&interval=1h&startTime={ms[5]}&limit=3")
    assert status == 200 and [r[0] for r in rows] == ms[5:8] and len(rows[0]) == 12
    _, rows = get(f"symbol=BTCUSDT&interval=1h&endTime={ms[9]}&limit=2")  # latest up to endTime
    assert [r[0] for r in rows] == ms[8:10]
    _, rows = get(f"symbol=BTCUSDT&interval=1h&startTime={ms[2]}&endTime={ms[4]}")
    assert [r[0] for r in rows] == ms[2:5]
    assert get("symbol=NOPEUSDT&interval=1h") == (400, {"code": -1121, "msg": "Invalid symbol."})
    assert get("symbol=BTCUSDT&interval=7x")[1]["code"] == -1120
    assert get("symbol=BTCUSDT&interval=1h&limit=1001")[0] == 400
