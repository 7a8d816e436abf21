"""Incremental candle download: our own paging loop over ``fetch_ohlcv`` (never ccxt's paginate).

Per series: resume after the last stored candle (and fetch an earlier ``since`` range if asked),
page forward with ``limit=1000`` from the last timestamp + 1 period, drop the still-open candle,
merge (new candles win on overlap), write atomically under the data-folder lock, and report.
Faults are retried with backoff (see ``exchange.call_with_retry``); one failing series does not
stop the others. Progress is kept: candles that extend the stored series without a hole are merged
every ``SAVE_EVERY`` pages and when a page fails for good, so the next run resumes after them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptocast.config.dates import to_timestamp
from cryptocast.config.timeframes import symbol_slug, timeframe_ms, validate_timeframe
from cryptocast.data.exchange import RetryPolicy, call_with_retry, check_market, make_exchange
from cryptocast.data.integrity import integrity_report
from cryptocast.data.store import (
    OHLCV_COLUMNS,
    append_candles,
    data_lock,
    merge_ohlcv,
    read_ohlcv,
    series_exists,
    series_path,
    validate_ohlcv,
)
from cryptocast.errors import ConfigError, CryptocastError

PAGE_LIMIT = 1000
SAVE_EVERY = 10  # pages between progress merges (each rewrites the file, or months, it touches)
DEFAULT_SINCE = "2018-01-01"
# progress(key, done, total): candles received so far and the expected total for the series
Progress = Callable[[str, int, int], None]


@dataclass
class SeriesReport:
    """What one series' fetch or import did. ``error`` is set on failure (progress kept, see above)."""

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


def check_range(
    since: str | None, until: str | None, now_ms: int | None = None
) -> tuple[int | None, int | None]:
    """``since``/``until`` as epoch ms; ConfigError when they can never select a candle.

    Args:
        now_ms: with it, a ``since`` after this clock fails too, before any request: no candle
            has opened yet, so no retry could help.
    """
    s, u = to_ms(since, "--since"), to_ms(until, "--until")
    if s is not None and u is not None and s >= u:
        raise ConfigError(f"--since {since} is not before --until {until}; swap or fix them")
    if s is not None and now_ms is not None and s > now_ms:
        clock = pd.Timestamp(now_ms, unit="ms", tz="UTC")
        raise ConfigError(
            f"--since {since} is in the future (now {clock:%Y-%m-%d %H:%M} UTC): no candle has "
            "opened yet; pick a date in the past"
        )
    return s, u


def _page(ex: Any, symbol: str, timeframe: str, since: int, policy: RetryPolicy) -> list[list]:
    import ccxt

    def call() -> list[list]:
        rows = ex.fetch_ohlcv(symbol, timeframe, since=since, limit=PAGE_LIMIT)
        if not rows and not isinstance(getattr(ex, "last_json_response", []), list):
            # ccxt returns [] for a body that is not a list; a fault, not the end of the data
            raise ccxt.BadResponse(f"{ex.id}: the klines answer is not a list")
        if any(len(r) < 6 or any(v is None for v in r[:6]) for r in rows):
            # an exchange fault (retried): ccxt leaves what it cannot read as None
            raise ccxt.BadResponse(f"{ex.id}: kline rows with missing fields")
        return rows

    return call_with_retry(call, policy, f"{ex.id} {symbol} {timeframe} candles", ex)


def download_range(
    ex: Any,
    symbol: str,
    timeframe: str,
    start_ms: int,
    end_ms: int | None,
    now_ms: int,
    policy: RetryPolicy,
    progress: Callable[[int], None] | None = None,
    save: Callable[[list[list]], None] | None = None,
) -> tuple[list[list], int]:
    """Closed candles with open time in [start_ms, end_ms) (end None: up to now). (rows, requests).

    Pages forward from the last received open time + 1 period. Stops on an empty page, a page with
    nothing new, reaching ``end_ms``, or a short page whose next start is past ``now_ms``.

    Args:
        save: receives closed candles in time order every ``SAVE_EVERY`` pages, and the rows
            received so far when a page fails for good (the error is then re-raised). Rows handed
            to ``save`` are not returned again.
    """
    period = timeframe_ms(timeframe)
    stop = end_ms if end_ms is not None else now_ms
    rows: list[list] = []
    since, requests, received = start_ms, 0, 0

    def closed(batch: list[list]) -> list[list]:
        # the still-open candle (open + period > now) is never stored
        return [r for r in batch if r[0] + period <= now_ms]

    while since < stop:
        try:
            batch = _page(ex, symbol, timeframe, since, policy)
        except CryptocastError:
            if save is not None and rows:
                save(closed(rows))
            raise
        requests += 1
        batch = [r for r in batch if r[0] >= since]
        if not batch:
            break
        got = [r for r in batch if r[0] < stop]
        rows.extend(got)
        received += len(got)
        if progress is not None:
            progress(received)
        since = int(batch[-1][0]) + period
        if len(batch) < PAGE_LIMIT and since > now_ms:
            break
        if save is not None and requests % SAVE_EVERY == 0:
            save(closed(rows))
            rows = []
    return closed(rows), requests


class _Saver:
    """Merges candles into one stored series under the data lock and counts what it added.

    ``merged`` is the series as stored, kept in memory from the candles read before the fetch, so
    an append to a monthly series (timeframes under 1h) rewrites and reads only the months touched.
    """

    def __init__(self, data_dir: Path, exchange_id: str, symbol: str, timeframe: str,
                 lock_timeout: float, stored: pd.DataFrame | None) -> None:  # fmt: skip
        self.args = (data_dir, exchange_id, symbol, timeframe)
        self.lock_timeout = lock_timeout
        self.new = 0
        self.dupes = 0
        self.merged = stored

    def __call__(self, rows: list[list]) -> None:
        data_dir, exchange_id, symbol, timeframe = self.args
        new = rows_to_frame(rows, f"{symbol} {timeframe} from {exchange_id}")
        with data_lock(data_dir, self.lock_timeout):
            dupes, _ = append_candles(data_dir, exchange_id, symbol, timeframe, new)
        self.merged = merge_ohlcv(self.merged, new)[0]
        self.new += len(new) - dupes
        self.dupes += dupes


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
        ConfigError, DataError, ExchangeError, LockedError: the series failed. Candles received
            before the failure that extend the stored series without a hole are kept (the
            message says how many); the stored candles are never lost.
    """
    validate_timeframe(timeframe)
    symbol_slug(symbol)
    start, end = check_range(since or DEFAULT_SINCE, until)
    assert start is not None
    policy = retry or RetryPolicy()
    path = series_path(data_dir, exchange_id, symbol, timeframe)
    # fail on an unreadable stored file before any network work; it is never overwritten
    stored = read_ohlcv(path) if series_exists(path) else None
    ex = exchange or make_exchange(exchange_id, exchange_url, timeout_ms)
    check_market(ex, symbol, timeframe, policy)
    now = int(now_ms if now_ms is not None else ex.milliseconds())
    period = timeframe_ms(timeframe)
    stop = min(end, now) if end is not None else now
    ranges: list[tuple[int, int | None]] = []
    if stored is None or stored.empty:
        ranges.append((start, end))
    first = 0
    if stored is not None and not stored.empty:
        first = int(stored["timestamp"].iloc[0].value // 1_000_000)
        last = int(stored["timestamp"].iloc[-1].value // 1_000_000)
        if start < first:
            ranges.append((start, first if end is None else min(first, end)))
        resume = max(start, last + period)
        if end is None or resume < end:
            ranges.append((resume, end))
    total = sum(max(0, ((e if e is not None else stop) - s) // period) for s, e in ranges)
    key = f"{symbol} {timeframe}"
    saver = _Saver(data_dir, exchange_id, symbol, timeframe, lock_timeout, stored)
    received, requests = 0, 0
    try:
        for s, e in ranges:
            done0 = received

            def tick(n: int, done0: int = done0) -> None:
                if progress is not None:
                    progress(key, done0 + n, max(total, done0 + n))

            # a head range before the stored candles is kept only once complete (no hole)
            extends = stored is None or stored.empty or s > first
            got, req = download_range(
                ex, symbol, timeframe, s, e, now, policy, tick, saver if extends else None
            )
            requests += req
            received = done0 + len(got)
            if got:
                saver(got)
    except CryptocastError as err:
        if saver.new:
            raise type(err)(
                f"{err}; kept the {saver.new:,} new candles received before the failure, "
                "rerun fetch to continue after them"
            ) from None
        raise
    if saver.merged is None:  # nothing stored, nothing received
        saver([])
    if progress is not None:
        progress(key, received, received)
    assert saver.merged is not None
    return SeriesReport(
        exchange=exchange_id,
        symbol=symbol,
        timeframe=timeframe,
        path=path,
        new_candles=saver.new,
        requests=requests,
        integrity=integrity_report(saver.merged, timeframe, duplicates_dropped=saver.dupes),
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

    Options that can never work (unknown exchange or timeframe, since >= until, since in the
    future) raise up front, before any request.
    """
    for tf in timeframes:
        validate_timeframe(tf)
    for sym in symbols:
        symbol_slug(sym)
    check_range(since, until, kw.get("now_ms") or int(time.time() * 1000))
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
