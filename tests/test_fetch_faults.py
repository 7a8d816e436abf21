"""Binance's real fault answers through real ccxt: what is retried, and progress kept on failure.

The fault trial (``run_trial``) serves whole series from the fake exchange with a share of klines
requests failing in Binance's ways and checks the store against the served candles, candle for
candle. The default run uses small synthetic series; ``-m slow`` runs the full 2018-2023 reference
trial (three symbols, 1h and 1d).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from cryptocast.data.exchange import RetryPolicy, make_exchange, retry_after_s
from cryptocast.data.fetch import SAVE_EVERY, fetch_many, fetch_series
from cryptocast.data.store import load_series, series_path
from cryptocast.errors import ConfigError, ExchangeError
from tests.conftest import make_ohlcv
from tests.fake_exchange import FAULT_KINDS, HTTP_FAULTS, FakeExchange

KLINES = "/api/v3/klines"
RETRIED = [k for k in HTTP_FAULTS if HTTP_FAULTS[k][0] >= 418 and k not in ("400", "403")]


def no_sleep(attempts: int = 8, sleeps: list[float] | None = None) -> RetryPolicy:
    """Zero-sleep policy (records the waits it was asked for)."""
    log = sleeps if sleeps is not None else []
    return RetryPolicy(attempts=attempts, sleep=log.append, rng=random.Random(0))


@pytest.fixture
def fx():
    with FakeExchange() as server:
        yield server


def _serve(fx: FakeExchange, n: int = 300) -> pd.DataFrame:
    df = make_ohlcv(n, "1h", start="2021-01-01", seed=5)
    fx.set_series("BTC", "USDT", "1h", df)
    return df


@pytest.mark.parametrize("kind", RETRIED)
def test_every_binance_try_again_answer_is_retried_and_named(fx, data_dir, kind):
    _serve(fx)
    fx.set_faults(1.0, kinds=(kind,), paths=(KLINES,))
    sleeps: list[float] = []
    rep = fetch_many(
        data_dir, "binance", ["BTC/USDT"], ["1h"], "2021-01-01", exchange_url=fx.url,
        retry=no_sleep(3, sleeps),
    )[0]  # fmt: skip
    assert fx.counts[KLINES] == 3  # tried three times
    assert rep.error_type is ExchangeError
    status = HTTP_FAULTS[kind][0]
    assert f"HTTP {status}, still failing after 3 attempts (retried 2 times" in rep.error
    if HTTP_FAULTS[kind][2]:  # 429/418 carry Retry-After: 1
        assert sleeps and min(sleeps) >= 1.0


@pytest.mark.parametrize("kind", ["400", "403"])
def test_client_errors_are_never_retried(fx, data_dir, kind):
    _serve(fx)
    fx.set_faults(1.0, kinds=(kind,), paths=(KLINES,))
    rep = fetch_many(
        data_dir, "binance", ["BTC/USDT"], ["1h"], "2021-01-01", exchange_url=fx.url,
        retry=no_sleep(5),
    )[0]  # fmt: skip
    assert fx.counts[KLINES] == 1
    assert f"HTTP {kind}, not retried" in rep.error
    assert rep.error_type is (ConfigError if kind == "400" else ExchangeError)


def test_retry_after_is_honoured_up_to_a_cap(fx, data_dir):
    _serve(fx)
    fx.set_faults(0.5, kinds=("429",), paths=(KLINES,), retry_after=7, seed=1)
    sleeps: list[float] = []
    rep = fetch_series(
        data_dir, "binance", "BTC/USDT", "1h", "2021-01-01", exchange_url=fx.url,
        retry=no_sleep(8, sleeps),
    )  # fmt: skip
    assert rep.new_candles == 300 and sum(fx.fault_counts.values()) == len(sleeps) > 0
    assert all(s >= 7.0 for s in sleeps)

    fx.set_faults(1.0, kinds=("418",), paths=(KLINES,), retry_after=3600)
    fx.reset_counts()
    with pytest.raises(ExchangeError, match=r"HTTP 418, the exchange asks to wait 3600 s"):
        fetch_series(
            data_dir, "binance", "BTC/USDT", "1h", "2021-01-01", exchange_url=fx.url,
            until="2021-02-01", retry=no_sleep(8),
        )  # fmt: skip
    assert fx.counts[KLINES] == 1


def test_retry_after_header_forms():
    assert retry_after_s({"Retry-After": "12"}) == 12.0
    assert retry_after_s({}) is None
    assert 0 <= retry_after_s({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) < 1  # past date
    assert retry_after_s({"Retry-After": "soon"}) is None


def test_a_failed_series_keeps_the_pages_it_received(fx, data_dir):
    df = make_ohlcv(35_000, "1h", start="2018-01-01", seed=2)
    fx.set_series("BTC", "USDT", "1h", df)
    fx.set_faults(1.0, kinds=("500",), paths=(KLINES,))
    fx.faults.rate = 0.0  # served cleanly until the switch below
    policy = no_sleep(3)
    pages: list[int] = []

    # fail for good from the 23rd klines request on: pages 1-22 arrived
    def progress(key: str, done: int, total: int) -> None:
        pages.append(done)
        if len(pages) == 22:
            fx.faults.rate = 1.0

    with pytest.raises(ExchangeError, match=r"kept the 22,000 new candles"):
        fetch_series(
            data_dir, "binance", "BTC/USDT", "1h", "2018-01-01", exchange_url=fx.url,
            retry=policy, progress=progress,
        )  # fmt: skip
    kept = load_series(data_dir, "binance", "BTC/USDT", "1h")
    assert kept.equals(df.iloc[:22_000].reset_index(drop=True))  # in order, no hole
    fx.set_faults(0.0)
    fx.reset_counts()
    rep = fetch_series(data_dir, "binance", "BTC/USDT", "1h", "2018-01-01", exchange_url=fx.url)
    assert rep.new_candles == 13_000 and fx.counts[KLINES] == 14  # resumed after the kept ones
    assert load_series(data_dir, "binance", "BTC/USDT", "1h").equals(df)
    assert SAVE_EVERY == 10


def test_exchange_records_http_status_of_each_answer(fx):
    _serve(fx, 20)
    ex = make_exchange("binance", fx.url)
    ex.load_markets()
    assert ex.http_trace[0] == 200


# ---- the fault trial --------------------------------------------------------------------------
@dataclass
class Trial:
    runs: int = 0
    requests: int = 0
    faults: int = 0
    retries: int = 0
    candles: int = 0
    lost: int = 0


def run_trial(
    fx: FakeExchange,
    served: dict[tuple[str, str], pd.DataFrame],
    data_dir: Path,
    rate: float,
    max_runs: int,
    seed: int = 0,
    attempts: int = 8,
) -> Trial:
    """Fetch every served series until all succeed (at most ``max_runs`` runs); compare candles.

    ``lost``: served candles missing from the store or stored with other values.
    """
    fx.set_faults(rate, kinds=FAULT_KINDS, paths=(KLINES,), seed=seed, slow_s=0.3)
    fx.reset_counts()
    symbols = sorted({s for s, _ in served})
    timeframes = sorted({t for _, t in served})
    trial = Trial()
    policy = no_sleep(attempts)
    while trial.runs < max_runs:
        trial.runs += 1
        reports = fetch_many(
            data_dir, "binance", symbols, timeframes, "2018-01-01", exchange_url=fx.url,
            retry=policy, timeout_ms=200,
        )  # fmt: skip
        if all(r.error is None for r in reports):
            break
    trial.requests = fx.counts[KLINES]
    trial.faults = sum(fx.fault_counts.values())
    trial.retries = policy.retries
    for (sym, tf), want in served.items():
        path = series_path(data_dir, "binance", sym, tf)
        got = load_series(data_dir, "binance", sym, tf) if path.exists() else want.iloc[:0]
        both = want.merge(got, on="timestamp", how="left", suffixes=("", "_got"))
        same = pd.Series(True, index=both.index)
        for c in ("open", "high", "low", "close", "volume"):
            same &= both[c] == both[f"{c}_got"]
        trial.candles += len(want)
        trial.lost += int((~same).sum()) + max(0, len(got) - len(want))
    return trial


def _synthetic() -> dict[tuple[str, str], pd.DataFrame]:
    out = {}
    for i, sym in enumerate(("BTC/USDT", "ETH/USDT", "LTC/USDT")):
        out[(sym, "1h")] = make_ohlcv(5_000, "1h", start="2018-01-01", seed=10 + i)
        out[(sym, "1d")] = make_ohlcv(1_500, "1d", start="2018-01-01", seed=20 + i)
    return out


def _serve_all(fx: FakeExchange, served: dict[tuple[str, str], pd.DataFrame]) -> None:
    for (sym, tf), df in served.items():
        base, quote = sym.split("/")
        fx.set_series(base, quote, tf, df)


def test_fault_trial_30_percent_one_run_60_percent_converges(fx, tmp_path):
    served = _synthetic()
    _serve_all(fx, served)
    t30 = run_trial(fx, served, tmp_path / "d30", 0.3, max_runs=1, seed=3)
    assert (t30.runs, t30.lost) == (1, 0) and t30.faults >= 5 and t30.retries == t30.faults
    # 4 attempts a page: at 60% a page fails for good 13% of the time, so runs must build on
    # what earlier runs kept
    t60 = run_trial(fx, served, tmp_path / "d60", 0.6, max_runs=15, seed=4, attempts=4)
    assert t60.lost == 0 and t60.faults > 30 and t60.runs > 1  # progress carried over runs
    print(f"\nfault trial 30%: {t30}\nfault trial 60%: {t60}")
    assert t60.candles == sum(map(len, served.values()))


@pytest.mark.slow
def test_fault_trial_full_reference_2018_2023(fx, shared_ohlcv, tmp_path):
    served = {}
    for sym in ("BTC/USDT", "ETH/USDT", "LTC/USDT"):
        for tf in ("1h", "1d"):
            served[(sym, tf)] = pd.read_parquet(
                shared_ohlcv / f"{sym.replace('/', '-')}_{tf}.parquet"
            )
    _serve_all(fx, served)
    t30 = run_trial(fx, served, tmp_path / "d30", 0.3, max_runs=1, seed=30)
    print(f"\nfault trial 30%: {t30}")
    assert (t30.runs, t30.lost) == (1, 0)
    t60 = run_trial(fx, served, tmp_path / "d60", 0.6, max_runs=30, seed=60)
    print(f"fault trial 60%: {t60}")
    assert t60.lost == 0
    t60_4 = run_trial(fx, served, tmp_path / "d60_4", 0.6, max_runs=30, seed=61, attempts=4)
    print(f"fault trial 60%, 4 attempts a page: {t60_4}")
    assert t60_4.lost == 0
