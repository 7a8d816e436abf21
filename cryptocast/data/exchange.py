"""The ccxt client: construction by id, a base-URL override, and retry with backoff.

ccxt is imported inside functions so ``cryptocast --help`` stays fast.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from cryptocast.errors import ConfigError, ExchangeError
from cryptocast.timeframes import validate_timeframe

T = TypeVar("T")
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


@dataclass
class RetryPolicy:
    """Exponential backoff with full jitter: sleep U(0, min(max_delay, base_delay * 2**k))."""

    attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 10.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> float:
        return self.rng.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


def _rewrite(url: str, base: str) -> str:
    """Swap the scheme+host of ``url`` for ``base`` and keep its path: .../api/v3 -> base/api/v3."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return url
    tail = url[len(f"{parts.scheme}://{parts.netloc}") :]
    return base.rstrip("/") + tail


def _rewrite_tree(node: Any, base: str) -> Any:
    if isinstance(node, str):
        return _rewrite(node, base)
    if isinstance(node, dict):
        return {k: _rewrite_tree(v, base) for k, v in node.items()}
    return node


def make_exchange(
    exchange_id: str, exchange_url: str | None = None, timeout_ms: int | None = None
) -> Any:
    """Build a ccxt exchange for public market data.

    Args:
        exchange_id: ccxt id such as ``binance``.
        exchange_url: base URL the REST paths are appended to (a mirror or the fake exchange);
            every URL in ``urls['api']`` gets this scheme+host and keeps its path.
        timeout_ms: request timeout; default 10 s (2 s for a local URL).

    Raises:
        ConfigError: unknown exchange id (the message lists a few valid ones) or a bad URL.
    """
    import ccxt

    if exchange_id not in ccxt.exchanges:
        some = ", ".join(e for e in ("binance", "kraken", "coinbase", "bybit", "okx", "bitstamp"))
        raise ConfigError(
            f"unknown exchange {exchange_id!r}; use a ccxt exchange id such as {some} "
            f"({len(ccxt.exchanges)} available)"
        )
    local = False
    if exchange_url:
        parts = urlsplit(exchange_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(
                f"--exchange-url {exchange_url!r} is not an http(s) base URL like http://127.0.0.1:8999"
            )
        local = (parts.hostname or "") in _LOCAL_HOSTS
    options: dict[str, Any] = {"defaultType": "spot"}
    if exchange_id.startswith("binance"):
        # spot only: no futures/options exchangeInfo calls, and no private sapi currency call
        options.update({"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False})
    ex = getattr(ccxt, exchange_id)(
        {
            # a local mirror has no rate limit; the real exchange gets ccxt's throttle
            "enableRateLimit": not local,
            "timeout": timeout_ms or (2_000 if local else 10_000),
            "options": options,
            # keep the parsed body: ccxt turns an unparsable 200 body into [] silently, which a
            # pager would take for "no more candles" (see fetch._page)
            "enableLastJsonResponse": True,
        }
    )
    if exchange_url:
        ex.urls["api"] = _rewrite_tree(ex.urls["api"], exchange_url)
        ex.urls.pop("apiBackup", None)
    return ex


def is_retryable(err: BaseException) -> bool:
    """Network trouble (timeouts, 5xx, 429/418, dropped connections, garbled bodies) is retried."""
    import ccxt

    if isinstance(err, (ccxt.BadSymbol, ccxt.BadRequest, ccxt.AuthenticationError)):
        return False
    return isinstance(err, (ccxt.NetworkError, ccxt.BadResponse)) or (
        isinstance(err, ccxt.ExchangeError) and _looks_garbled(err)
    )


def _looks_garbled(err: BaseException) -> bool:
    # ccxt reports an unparsable 200 body inconsistently across versions; treat those as transient
    text = str(err).lower()
    return "json" in text or "unexpected" in text


def call_with_retry(fn: Callable[[], T], policy: RetryPolicy, what: str) -> T:
    """Call ``fn``; retry retryable ccxt errors with backoff; map final errors to ours.

    Raises:
        ConfigError: the exchange rejected the symbol or a parameter (BadSymbol/BadRequest).
        ExchangeError: still failing after ``policy.attempts`` tries, or any other ccxt error.
    """
    import ccxt

    last: BaseException | None = None
    for attempt in range(policy.attempts):
        try:
            return fn()
        except ccxt.BadSymbol as err:
            raise ConfigError(f"{what}: the exchange does not know this symbol ({err})") from None
        except ccxt.BadRequest as err:
            raise ConfigError(f"{what}: the exchange rejected the request ({err})") from None
        except (ccxt.BaseError, ValueError, TypeError, KeyError, IndexError) as err:
            # ValueError & co: ccxt choking on a malformed body; transient like a network error
            if isinstance(err, ccxt.BaseError) and not is_retryable(err):
                raise ExchangeError(f"{what}: {_short(err)}") from None
            last = err
            if attempt + 1 < policy.attempts:
                policy.sleep(policy.delay(attempt))
    raise ExchangeError(
        f"{what}: still failing after {policy.attempts} attempts ({type(last).__name__}: "
        f"{_short(last)}); check the connection or --exchange-url and retry"
    )


def _short(err: BaseException | None) -> str:
    text = " ".join(str(err).split())
    return text[:160] + ("..." if len(text) > 160 else "")


def check_market(ex: Any, symbol: str, timeframe: str, policy: RetryPolicy) -> None:
    """Load markets (with retry) and reject an unknown symbol or timeframe with a ConfigError."""
    validate_timeframe(timeframe)
    tfs = getattr(ex, "timeframes", None) or {}
    if tfs and timeframe not in tfs:
        raise ConfigError(
            f"unknown timeframe {timeframe!r} on {ex.id}; use one of {', '.join(tfs)}"
        )
    markets = call_with_retry(lambda: ex.load_markets(), policy, f"{ex.id} load markets")
    if symbol not in markets:
        sample = ", ".join(sorted(markets)[:5])
        raise ConfigError(f"unknown symbol {symbol!r} on {ex.id}; markets include {sample}")
