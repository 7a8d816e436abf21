"""Incremental candle download: our own paging loop over ``fetch_ohlcv`` (never ccxt's paginate).

Per series: resume after the last stored candle (and fetch an earlier ``since`` range if asked),
page forward with ``limit=1000`` from the last timestamp + 1 period, drop the still-open candle,
merge (new candles win on overlap), write atomically under the data-folder lock, and report.
Network faults are retried with backoff; one failing series does not stop the others.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptocast.data.exchange import RetryPolicy, call_with_retry, check_market, make_exchange
from cryptocast.data.integrity import integrity_report
from cryptocast.data.store import (
    OHLCV_COLUMNS,
    data_lock,
    read_ohlcv,
    series_path,
    store_candles,
    validate_ohlcv,
)
from cryptocast.dates import to_timestamp
from cryptocast.errors import ConfigError, CryptocastError
from cryptocast.timeframes import symbol_slug, timeframe_ms, validate_timeframe

PAGE_LIMIT = 1000
DEFAULT_SINCE = "2018-01-01"
# progress(key, done, total): candles received so far and the expected total for the series
Progress = Callable[[str, int, int], None]


@dataclass
class SeriesReport:
    """What one series' fetch or import did. ``error`` is set (and nothing stored) on failure."""

    exchange: str
    symbol: str
    timeframe: str
    path: Path | None = None
    new_candles: int = 0
    requests: int = 0
    integrity: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    error_type: type[CryptocastError] | None = None


def to_ms(value: str | pd.Timestamp | None, name: str) -> int | None:
    """An ISO date/time (UTC when naive) as epoch milliseconds; ConfigError naming the option."""
    if value is None or value == "":
        return None
    if isinstance(value, pd.Timestamp):
        ts = value.tz_localize("UTC") if value.tzinfo is None else value.tz_convert("UTC")
    else:
        ts = to_timestamp(value, name)
    return int(ts.value // 1_000_000)


def check_range(since: str | None, until: str | None) -> tuple[int | None, int | None]:
    s, u = to_ms(since, "--since"), to_ms(until, "--until")
    if s is not None and u is not None and s >= u:
        raise ConfigError(f"--since {since} is not before --until {until}; swap or fix them")
    return s, u


def _page(ex: Any, symbol: str, timeframe: str, since: int, policy: RetryPolicy) -> list[list]:
    def call() -> list[list]:
        rows = ex.fetch_ohlcv(symbol, timeframe, since=since, limit=PAGE_LIMIT)
        if not rows and not isinstance(getattr(ex, "last_json_response", []), list):
            # ccxt returns [] for an unparsable body; that is a fault, not the end of the data
            raise ValueError("malformed response body")
        if any(len(r) < 6 or r[0] is None for r in rows):
            raise ValueError("malformed kline rows")
        return rows

    return call_with_retry(call, policy, f"{ex.id} {symbol} {timeframe} candles")


def download_range(
    ex: Any,
    symbol: str,
    timeframe: str,
    start_ms: int,
    end_ms: int | None,
    now_ms: int,
    policy: RetryPolicy,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[list], int]:
    """Closed candles with open time in [start_ms, end_ms) (end None: up to now). (rows, requests).

    Pages forward from the last received open time + 1 period. Stops on an empty page, a page with
    nothing new, reaching ``end_ms``, or a short page whose next start is past ``now_ms``.
    """
    period = timeframe_ms(timeframe)
    stop = end_ms if end_ms is not None else now_ms
    rows: list[list] = []
    since, requests = start_ms, 0
    while since < stop:
        batch = _page(ex, symbol, timeframe, since, policy)
        requests += 1
        batch = [r for r in batch if r[0] >= since]
        if not batch:
            break
        rows.extend(r for r in batch if r[0] < stop)
        if progress is not None:
            progress(len(rows))
        since = int(batch[-1][0]) + period
        if len(batch) < PAGE_LIMIT and since > now_ms:
            break
    # the still-open candle (open + period > now) is never stored
    closed = [r for r in rows if r[0] + period <= now_ms]
    return closed, requests


def rows_to_frame(rows: list[list], source: str) -> pd.DataFrame:
    arr = np.asarray([r[:6] for r in rows], dtype="float64").reshape(-1, 6)
    df = pd.DataFrame(arr, columns=OHLCV_COLUMNS)
    df["timestamp"] = pd.to_datetime(arr[:, 0].astype("int64"), unit="ms", utc=True).astype(
        "datetime64[ns, UTC]"
    )
    return validate_ohlcv(df, source)


def fetch_series(
    data_dir: Path,
    exchange_id: str,
    symbol: str,
    timeframe: str,
    since: str | None = None,
    until: str | None = None,
    exchange_url: str | None = None,
    progress: Progress | None = None,
    *,
    exchange: Any = None,
    retry: RetryPolicy | None = None,
    now_ms: int | None = None,
    timeout_ms: int | None = None,
    lock_timeout: float = 30.0,
) -> SeriesReport:
    """Download what is missing of one series into the store and report on it.

    Args:
        since: first candle wanted (default 2018-01-01); earlier than the stored data -> that
            range is fetched too. Later candles always resume after the last stored one.
        until: exclusive end (default: now). Candles still open at ``now_ms`` are dropped.
        exchange: a ready ccxt exchange (shared across series); built from the id when None.
        now_ms: the clock for the open-candle rule (default: ``exchange.milliseconds()``).

    Raises:
        ConfigError, DataError, ExchangeError, LockedError: the series failed; nothing written.
    """
    validate_timeframe(timeframe)
    symbol_slug(symbol)
    start, end = check_range(since or DEFAULT_SINCE, until)
    assert start is not None
    policy = retry or RetryPolicy()
    path = series_path(data_dir, exchange_id, symbol, timeframe)
    # fail on an unreadable stored file before any network work; it is never overwritten
    stored = read_ohlcv(path) if path.exists() else None
    ex = exchange or make_exchange(exchange_id, exchange_url, timeout_ms)
    check_market(ex, symbol, timeframe, policy)
    now = int(now_ms if now_ms is not None else ex.milliseconds())
    period = timeframe_ms(timeframe)
    stop = min(end, now) if end is not None else now
    ranges: list[tuple[int, int | None]] = []
    if stored is None or stored.empty:
        ranges.append((start, end))
    else:
        first = int(stored["timestamp"].iloc[0].value // 1_000_000)
        last = int(stored["timestamp"].iloc[-1].value // 1_000_000)
        if start < first:
            ranges.append((start, first if end is None else min(first, end)))
        resume = max(start, last + period)
        if end is None or resume < end:
            ranges.append((resume, end))
    total = sum(max(0, ((e if e is not None else stop) - s) // period) for s, e in ranges)
    key = f"{symbol} {timeframe}"
    rows: list[list] = []
    requests = 0
    for s, e in ranges:
        done0 = len(rows)

        def tick(n: int, done0: int = done0) -> None:
            if progress is not None:
                progress(key, done0 + n, max(total, done0 + n))

        got, req = download_range(ex, symbol, timeframe, s, e, now, policy, tick)
        rows.extend(got)
        requests += req
    if progress is not None:
        progress(key, len(rows), len(rows))
    new = rows_to_frame(rows, f"{symbol} {timeframe} from {exchange_id}")
    with data_lock(data_dir, lock_timeout):
        merged, dupes = store_candles(data_dir, exchange_id, symbol, timeframe, new)
    return SeriesReport(
        exchange=exchange_id,
        symbol=symbol,
        timeframe=timeframe,
        path=path,
        new_candles=len(new) - dupes,
        requests=requests,
        integrity=integrity_report(merged, timeframe, duplicates_dropped=dupes),
    )


def estimate_requests(n_candles: int) -> int:
    """Requests our pager needs for ``n_candles`` new candles: full pages plus one closing page."""
    return math.ceil(n_candles / PAGE_LIMIT) + 1


def fetch_many(
    data_dir: Path,
    exchange_id: str,
    symbols: list[str],
    timeframes: list[str],
    since: str | None = None,
    until: str | None = None,
    exchange_url: str | None = None,
    progress: Progress | None = None,
    **kw: Any,
) -> list[SeriesReport]:
    """Fetch every symbol x timeframe; a failing series is reported and the others go on.

    Options that can never work (unknown exchange or timeframe, since >= until) raise up front.
    """
    for tf in timeframes:
        validate_timeframe(tf)
    for sym in symbols:
        symbol_slug(sym)
    check_range(since, until)
    ex = kw.pop("exchange", None) or make_exchange(exchange_id, exchange_url, kw.get("timeout_ms"))
    tfs = getattr(ex, "timeframes", None) or {}
    bad = [tf for tf in timeframes if tfs and tf not in tfs]
    if bad:
        raise ConfigError(
            f"unknown timeframe {bad[0]!r} on {exchange_id}; use one of {', '.join(tfs)}"
        )
    reports = []
    for sym in symbols:
        for tf in timeframes:
            try:
                rep = fetch_series(
                    data_dir,
                    exchange_id,
                    sym,
                    tf,
                    since,
                    until,
                    progress=progress,
                    exchange=ex,
                    **kw,
                )
            except CryptocastError as err:
                rep = SeriesReport(exchange_id, sym, tf, error=str(err), error_type=type(err))
            reports.append(rep)
    return reports
