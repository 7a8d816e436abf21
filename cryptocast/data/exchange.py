"""The ccxt client: construction by id, a base-URL override, and retry with backoff.

What is retried follows the HTTP status first, because ccxt reads Binance's JSON error body before
the status: a 500 ``{"code": -1001, ...}`` becomes ``OperationFailed`` and a 503 with a code ccxt
does not know a plain ``ExchangeError``. So every 5xx, 429 and 418 is retried whatever its body
(honouring ``Retry-After`` up to a cap), no other 4xx ever is, and without an HTTP error status
(timeouts, dropped connections, garbled bodies) ccxt's ``OperationFailed`` family is. A 2xx body
that is not JSON (ccxt then hands back the text, which its parsers read as an empty or nonsense
list) is raised as ccxt's ``BadResponse``, an ``OperationFailed``. Only ccxt's errors are judged
at all: a ``TypeError``, ``KeyError`` or ``IndexError`` is a bug (ours or ccxt's choking on an
answer) and propagates at once with its traceback, never disguised as a network fault.

ccxt is imported inside functions so ``cryptocast --help`` stays fast.
"""

from __future__ import annotations

import email.utils
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from cryptocast.config.names import check_exchange_name
from cryptocast.config.timeframes import validate_timeframe
from cryptocast.errors import ConfigError, ExchangeError

T = TypeVar("T")
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
URL_OPTION = "--exchange-url (or $CRYPTOCAST_EXCHANGE_URL)"
# the password of a URL's user info: scheme://user:PASSWORD@host
_PASSWORD = re.compile(r"(://[^/@\s:]*):[^/@\s]*@")


def redact_url(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@host`` in it as ``***``."""
    return _PASSWORD.sub(r"\1:***@", str(text))


def check_exchange_url(url: str) -> tuple[str, bool]:
    """An http(s) base URL and whether its host is this machine (no rate limit then).

    Raises:
        ConfigError: naming the option and its variable, and the URL (password redacted).
    """
    shown = repr(redact_url(url)[:200])
    like = "use a base URL like http://127.0.0.1:8999"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is not 0..65535)
    except ValueError as err:
        raise ConfigError(f"{URL_OPTION} {shown} is not a valid URL ({err}); {like}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{URL_OPTION} {shown} is not an http(s) base URL; {like}")
    return url, parts.hostname in _LOCAL_HOSTS


@dataclass
class RetryPolicy:
    """Exponential backoff with full jitter: sleep U(0, min(max_delay, base_delay * 2**k)).

    A ``Retry-After`` header overrides the backoff when longer; one above ``max_retry_after``
    seconds stops the retries (waiting it out is the user's call). ``retries`` counts the retries
    made with this policy, for reports.
    """

    attempts: int = 8
    base_delay: float = 0.5
    max_delay: float = 10.0
    max_retry_after: float = 120.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    retries: int = field(default=0, compare=False)

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

    validate_exchange_id(exchange_id)
    local = False
    if exchange_url:
        exchange_url, local = check_exchange_url(exchange_url)
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
    _trace_http(ex)
    return ex


def _trace_http(ex: Any) -> None:
    """Record each answer's HTTP status and headers on ``ex.http_trace`` (ccxt keeps no status),
    and raise ccxt's ``BadResponse`` for a 2xx answer whose body is not JSON.

    ccxt calls ``on_rest_response`` for every answer before it raises, so the wrapper sees the
    status of a 503 that ccxt then reports as an error parsed from the body. A 2xx body that does
    not parse would be handed back as text, which ccxt's parsers turn into an empty or nonsense
    list (a pager would take that for the end of the data); it is stopped before any parser runs.
    """
    import ccxt

    original, parse_json = ex.on_rest_response, ex.parse_json

    def on_rest_response(code, reason, url, method, headers, body, *rest):  # type: ignore[no-untyped-def]
        ex.http_trace = (int(code), headers)
        return original(code, reason, url, method, headers, body, *rest)

    def checked_parse_json(body):  # type: ignore[no-untyped-def]
        parsed = parse_json(body)
        if parsed is None and ex.http_trace is not None and ex.http_trace[0] < 400:
            raise ccxt.BadResponse(f"{ex.id}: HTTP {ex.http_trace[0]} answer is not JSON")
        return parsed

    ex.http_trace = None
    ex.on_rest_response = on_rest_response
    ex.parse_json = checked_parse_json


def validate_exchange_id(exchange_id: str, known: bool = True) -> str:
    """An exchange id that is safe as a folder name; with ``known`` it must be a ccxt id.

    Raises:
        ConfigError: naming the id and what is allowed.
    """
    check_exchange_name(exchange_id)
    if known:
        import ccxt

        if exchange_id not in ccxt.exchanges:
            some = "binance, kraken, coinbase, bybit, okx, bitstamp"
            raise ConfigError(
                f"unknown exchange {exchange_id!r}; use a ccxt exchange id such as {some} "
                f"({len(ccxt.exchanges)} available)"
            )
    return exchange_id


def is_retryable(err: BaseException, status: int | None = None) -> bool:
    """Whether a failed call is worth repeating.

    Args:
        err: what the call raised.
        status: the HTTP status of the answer, None when there was none (timeout, dropped
            connection) or it is unknown. 5xx, 429 and 418 are retried whatever ccxt made of the
            body; any other 4xx never is.
    """
    import ccxt

    if not isinstance(err, ccxt.BaseError):
        return False  # a Python error is a bug whatever the answer was
    if status is not None and status >= 400:
        return status >= 500 or status in (418, 429)
    return isinstance(err, ccxt.OperationFailed)


def retry_after_s(headers: Any) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta-seconds or an HTTP date); None if absent."""
    value = headers.get("Retry-After") if headers is not None else None
    if value is None:
        return None
    value = str(value).strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def call_with_retry(fn: Callable[[], T], policy: RetryPolicy, what: str, ex: Any = None) -> T:
    """Call ``fn``; retry what ``is_retryable`` allows with backoff; map final errors to ours.

    Args:
        ex: the exchange ``fn`` talks to; its ``http_trace`` (see ``make_exchange``) gives the
            HTTP status and ``Retry-After`` of a failed answer. Without it errors are judged by
            their ccxt type alone.

    Raises:
        ConfigError: the exchange rejected the symbol or a parameter (BadSymbol/BadRequest).
        ExchangeError: still failing after ``policy.attempts`` tries (the message names the HTTP
            status and the retry count), a Retry-After above the cap, or an error not retried.
    """
    import ccxt

    last: BaseException | None = None
    status: int | None = None
    for attempt in range(policy.attempts):
        if ex is not None:
            ex.http_trace = None
        try:
            return fn()
        except ccxt.BaseError as err:  # nothing else: see the module docstring
            trace = getattr(ex, "http_trace", None) if ex is not None else None
            status, headers = trace if trace else (None, None)
            if status is not None and status < 400:
                status = None  # a 2xx with a body ccxt could not use
            if not is_retryable(err, status):
                http = f"HTTP {status}, not retried: " if status else ""
                if isinstance(err, ccxt.BadSymbol):
                    raise ConfigError(
                        f"{what}: the exchange does not know this symbol ({http}{_short(err)})"
                    ) from None
                if isinstance(err, ccxt.BadRequest):
                    raise ConfigError(
                        f"{what}: the exchange rejected the request ({http}{_short(err)})"
                    ) from None
                raise ExchangeError(f"{what}: {http}{_short(err)}") from None
            last = err
            if attempt + 1 >= policy.attempts:
                break
            wait = policy.delay(attempt)
            after = retry_after_s(headers) if status in (418, 429, 503) else None
            if after is not None:
                if after > policy.max_retry_after:
                    raise ExchangeError(
                        f"{what}: HTTP {status}, the exchange asks to wait {after:.0f} s "
                        f"(Retry-After), more than {policy.max_retry_after:.0f} s; "
                        "rerun fetch after that"
                    ) from None
                wait = max(wait, after)
            policy.retries += 1
            policy.sleep(wait)
    answer = f"HTTP {status}" if status else "no usable answer"
    raise ExchangeError(
        f"{what}: {answer}, still failing after {policy.attempts} attempts (retried "
        f"{policy.attempts - 1} times; last: {type(last).__name__}: {_short(last)}); "
        f"check the connection or {URL_OPTION} and rerun fetch: stored candles are kept"
    )


def _short(err: BaseException | None) -> str:
    text = " ".join(redact_url(str(err)).split())  # ccxt's messages hold the URL it asked
    return text[:160] + ("..." if len(text) > 160 else "")


def check_market(ex: Any, symbol: str, timeframe: str, policy: RetryPolicy) -> None:
    """Load markets (with retry) and reject an unknown symbol or timeframe with a ConfigError."""
    validate_timeframe(timeframe)
    tfs = getattr(ex, "timeframes", None) or {}
    if tfs and timeframe not in tfs:
        raise ConfigError(
            f"unknown timeframe {timeframe!r} on {ex.id}; use one of {', '.join(tfs)}"
        )
    markets = call_with_retry(lambda: ex.load_markets(), policy, f"{ex.id} load markets", ex)
    if symbol not in markets:
        sample = ", ".join(sorted(markets)[:5])
        raise ConfigError(f"unknown symbol {symbol!r} on {ex.id}; markets include {sample}")
