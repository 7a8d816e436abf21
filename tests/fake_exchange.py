"""A small HTTP server that emulates Binance spot's public REST API from Parquet candles.

Serves ``/api/v3/exchangeInfo``, ``/api/v3/klines`` (12-field klines, ``startTime``/``endTime``/
``limit`` <= 1000 with Binance's semantics), ``/api/v3/ping`` and ``/api/v3/time``, so ccxt itself
is the client in tests: nothing in ccxt is mocked. Candles come from a folder of
``BASE-QUOTE_tf.parquet`` files (the store's naming) and can be replaced while it runs. It counts
requests per path and injects faults at a seeded rate: Binance's real "try again" answers (HTTP 500
with codes -1001/-1000/-1006, 503 with -1008 or a code ccxt does not know, 429 and 418 with -1003 and
``Retry-After``, a 502 HTML page from the gateway), slow responses, dropped connections, malformed
JSON; and, on request only, client errors that must never be retried (400, a 403 WAF page).

Run it standalone::

    python -m tests.fake_exchange --data ../shared/data/ohlcv/binance --port 8999
    cryptocast fetch --exchange-url http://127.0.0.1:8999 --data-dir /tmp/data
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pandas as pd

INTERVALS_MS = {
    "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
    "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000, "8h": 28_800_000,
    "12h": 43_200_000, "1d": 86_400_000, "3d": 259_200_000, "1w": 604_800_000,
}  # fmt: skip
_HTML_502 = (
    "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1>"
    "</center><hr><center>CloudFront</center></body></html>"
)
# kind -> (HTTP status, body, send Retry-After): the answers Binance documents for these cases
HTTP_FAULTS: dict[str, tuple[int, object, bool]] = {
    "500": (500, {"code": -1001, "msg": "Internal error; unable to process your request. Please try again."}, False),
    "500-1000": (500, {"code": -1000, "msg": "An unknown error occurred while processing the request."}, False),
    "500-1006": (500, {"code": -1006, "msg": "An unexpected response was received from the message bus. Execution status unknown."}, False),
    "503": (503, {"code": -1008, "msg": "Server is currently overloaded with other requests. Please try again in a few minutes."}, False),
    "503-unknown": (503, {"code": -1, "msg": "Service unavailable"}, False),
    "502": (502, _HTML_502, False),
    "429": (429, {"code": -1003, "msg": "Too much request weight used; current limit is 6000 request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API."}, True),
    "418": (418, {"code": -1003, "msg": "Way too much request weight used; IP banned until 1700000000000. Please use WebSocket Streams for live updates to avoid bans."}, True),
    # client errors: never retried, so not among the default kinds
    "400": (400, {"code": -1100, "msg": "Illegal characters found in a parameter."}, False),
    "403": (403, "<html><body><h1>403 Forbidden</h1>Request blocked.</body></html>", False),
}  # fmt: skip
FAULT_KINDS = (
    "429", "418", "500", "500-1000", "500-1006", "503", "503-unknown", "502",
    "slow", "drop", "badjson",
)  # fmt: skip


@dataclass
class Faults:
    """Which share of requests fail, and how. ``rate`` 0 disables injection."""

    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    seed: int = 0
    slow_s: float = 1.0  # sleep before answering; pick it above the client's timeout
    retry_after: int = 1  # seconds in the Retry-After header of 429/418
    paths: tuple[str, ...] = ("/api/v3/klines", "/api/v3/exchangeInfo")
    rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)


class _Series:
    """One served series as epoch-ms open times plus pre-encoded JSON kline rows (fast paging)."""

    def __init__(self, df: pd.DataFrame, interval_ms: int) -> None:
        ts = df["timestamp"].astype("datetime64[ns, UTC]")
        self.open_ms = (ts.astype("int64") // 1_000_000).to_numpy(np.int64)
        cols = [df[c].to_numpy(np.float64) for c in ("open", "high", "low", "close", "volume")]
        # repr(float) round-trips exactly, so clients parse back the identical float64
        self.rows = [
            f'[{t},"{o!r}","{h!r}","{lo!r}","{c!r}","{v!r}",{t + interval_ms - 1},'
            f'"{c * v!r}",100,"{v / 2!r}","{c * v / 2!r}","0"]'
            for t, o, h, lo, c, v in zip(
                self.open_ms.tolist(), *(x.tolist() for x in cols), strict=True
            )
        ]


class FakeExchange:
    """The server plus its state. ``with FakeExchange(folder) as fx: ... fx.url ...``."""

    def __init__(self, data: Path | None = None, port: int = 0, host: str = "127.0.0.1") -> None:
        self.series: dict[tuple[str, str], _Series] = {}  # (BTCUSDT, 1h) -> series
        self.assets: dict[str, tuple[str, str]] = {}  # BTCUSDT -> (BTC, USDT)
        self.counts: Counter[str] = Counter()
        self.log: list[str] = []  # every request's path?query, in arrival order
        self.faults = Faults()
        self.fault_counts: Counter[str] = Counter()
        self.raw: dict[str, tuple[int, str]] = {}  # path -> (status, body): see serve_raw
        self._lock = threading.Lock()
        if data is not None:
            self.load_folder(Path(data))
        self.httpd = ThreadingHTTPServer((host, port), _make_handler(self))
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    # ---- data -------------------------------------------------------------------------------
    def load_folder(self, folder: Path, end: str | pd.Timestamp | None = None) -> None:
        """Serve every ``BASE-QUOTE_tf.parquet`` in ``folder``; ``end`` cuts candles at or after."""
        for path in sorted(folder.glob("*-*_*.parquet")):
            pair, tf = path.stem.rsplit("_", 1)
            if pair.count("-") != 1:
                continue  # a perpetual or future (BTC-USDT-USDT): Binance spot serves none
            base, quote = pair.split("-")
            df = pd.read_parquet(path)
            if end is not None:
                df = df[df["timestamp"] < pd.Timestamp(end, tz="UTC")]
            self.set_series(base, quote, tf, df)

    def set_series(self, base: str, quote: str, timeframe: str, df: pd.DataFrame) -> None:
        """Serve (or replace) the candles of ``BASE/QUOTE timeframe`` (store schema frame)."""
        s = _Series(df, INTERVALS_MS[timeframe])
        with self._lock:
            self.series[(base + quote, timeframe)] = s
            self.assets[base + quote] = (base, quote)

    def reset_counts(self) -> None:
        with self._lock:
            self.counts.clear()
            self.fault_counts.clear()
            self.log.clear()

    def set_faults(self, rate: float = 0.0, **kw: object) -> None:
        self.faults = Faults(rate=rate, **kw)  # type: ignore[arg-type]

    def serve_raw(self, path: str, body: object | None, status: int = 200) -> None:
        """Answer every request to ``path`` with ``body`` (JSON-encoded unless a str) and
        ``status`` until called again with None: malformed answers, on request only."""
        with self._lock:
            if body is None:
                self.raw.pop(path, None)
            else:
                self.raw[path] = (status, body if isinstance(body, str) else json.dumps(body))

    # ---- lifecycle --------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeExchange:
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> FakeExchange:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- endpoints ---------------------------------------------------------------------------
    def pick_fault(self, path: str) -> str | None:
        f = self.faults
        if f.rate <= 0 or path not in f.paths:
            return None
        with self._lock:
            if f.rng.random() >= f.rate:
                return None
            kind = f.rng.choice(f.kinds)
            self.fault_counts[kind] += 1
            return kind

    def exchange_info(self) -> dict:
        with self._lock:
            assets = dict(self.assets)
        return {
            "timezone": "UTC",
            "serverTime": int(time.time() * 1000),
            "rateLimits": [],
            "exchangeFilters": [],
            "symbols": [_symbol_info(sym, b, q) for sym, (b, q) in sorted(assets.items())],
        }

    def klines(self, q: dict[str, str]) -> tuple[int, object]:
        symbol, interval = q.get("symbol", ""), q.get("interval", "")
        if symbol not in self.assets:
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        if interval not in INTERVALS_MS:
            return 400, {"code": -1120, "msg": "Invalid interval."}
        try:
            limit = int(q.get("limit", 500))
            start = int(q["startTime"]) if "startTime" in q else None
            end = int(q["endTime"]) if "endTime" in q else None
        except ValueError:
            return 400, {"code": -1100, "msg": "Illegal characters found in a parameter."}
        if not 1 <= limit <= 1000:
            return 400, {"code": -1130, "msg": "Invalid data sent for a parameter."}
        with self._lock:
            s = self.series.get((symbol, interval))
        if s is None:
            return 200, "[]"
        hi = len(s.open_ms) if end is None else int(np.searchsorted(s.open_ms, end, "right"))
        if start is not None:  # Binance: from startTime forward, up to limit
            lo = int(np.searchsorted(s.open_ms, start, "left"))
            hi = min(hi, lo + limit)
        else:  # no startTime: the latest `limit` candles up to endTime
            lo = max(0, hi - limit)
        return 200, "[" + ",".join(s.rows[lo:hi]) + "]"


def _symbol_info(symbol: str, base: str, quote: str) -> dict:
    return {
        "symbol": symbol,
        "status": "TRADING",
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": "0.01",
                "maxPrice": "1000000.00",
                "tickSize": "0.01",
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": "0.00001",
                "maxQty": "9000.0",
                "stepSize": "0.00001",
            },
            {"filterType": "NOTIONAL", "minNotional": "5.0", "maxNotional": "9000000.0"},
        ],  # fmt: skip
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


def _make_handler(fx: FakeExchange) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: ccxt's requests session reuses connections

        def log_message(self, *args: object) -> None:  # quiet
            pass

        def _send(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
            text = body if isinstance(body, str) else json.dumps(body)
            html = text.startswith("<html")
            data = text.encode()
            self.send_response(status)
            ctype = "text/html" if html else "application/json;charset=UTF-8"
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 (http.server API)
            url = urlparse(self.path)
            path = url.path
            with fx._lock:
                fx.counts[path] += 1
                fx.log.append(self.path)
            fault = fx.pick_fault(path)
            with fx._lock:
                raw = fx.raw.get(path)
            try:
                if raw is not None:
                    self._send(*raw)
                    return
                if fault == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault == "slow":
                    time.sleep(fx.faults.slow_s)
                elif fault in HTTP_FAULTS:
                    status, body, retry_after = HTTP_FAULTS[fault]
                    extra = {"Retry-After": str(fx.faults.retry_after)} if retry_after else None
                    self._send(status, body, extra)
                    return
                elif fault == "badjson":
                    self._send(200, '[[1514764800000,"13715.65","13818.55"')
                    return
                q = {k: v[-1] for k, v in parse_qs(url.query).items()}
                if path == "/api/v3/klines":
                    self._send(*fx.klines(q))
                elif path == "/api/v3/exchangeInfo":
                    self._send(200, fx.exchange_info())
                elif path == "/api/v3/ping":
                    self._send(200, {})
                elif path == "/api/v3/time":
                    self._send(200, {"serverTime": int(time.time() * 1000)})
                else:
                    self._send(404, {"code": -1000, "msg": f"unknown path {path}"})
            except (BrokenPipeError, ConnectionResetError, OSError):
                self.close_connection = True  # the client gave up (timeout) first

    return Handler


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="folder of BASE-QUOTE_tf.parquet files")
    p.add_argument("--port", type=int, default=8999)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--end", help="serve only candles before this date (e.g. 2022-01-01)")
    p.add_argument("--fault-rate", type=float, default=0.0, help="share of requests that fail")
    p.add_argument("--fault-kinds", default=",".join(FAULT_KINDS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--slow-s", type=float, default=12.0, help="delay of a 'slow' fault")
    a = p.parse_args(argv)
    fx = FakeExchange(port=a.port, host=a.host)
    fx.load_folder(a.data, end=a.end)
    fx.set_faults(a.fault_rate, kinds=tuple(a.fault_kinds.split(",")), seed=a.seed, slow_s=a.slow_s)
    print(f"fake exchange serving {len(fx.series)} series from {a.data} at {fx.url}", flush=True)
    try:
        fx.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        fx.httpd.server_close()


if __name__ == "__main__":
    main()
