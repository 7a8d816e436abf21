"""Names that become paths (symbols, exchange folders, run names) and output folders.

A name from the command line or a config must never climb out of its folder (``..``, ``/``), hide
(a leading dot) or exceed a file-name length limit, so each is matched against a small alphabet.
An output folder is proven writable before the work that fills it starts.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from pathlib import Path

from cryptocast.errors import ConfigError, StorageError, describe_os_error

# BASE and QUOTE of a market: letters and digits, as exchanges spell them (1000SATS, USDT)
_ASSET = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.]{0,31}")
# an exchange folder: a ccxt id or a plain name for imported data
_EXCHANGE = re.compile(r"[a-z0-9][a-z0-9_]{0,39}")
# a run folder name
_RUN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.=+-]{0,99}")


def symbol_slug(symbol: str) -> str:
    """The file-name form of a market symbol: ``BTC/USDT`` -> ``BTC-USDT``.

    A derivative keeps its settle currency and expiry (ccxt's ``BASE/QUOTE:SETTLE[-EXPIRY...]``),
    so its candles never share the spot file: ``BTC/USDT:USDT`` (a perpetual) ->
    ``BTC-USDT-USDT``, ``BTC/USDT:USDT-250627`` (a dated future) -> ``BTC-USDT-USDT-250627``.
    Assets hold no ``-``, so a spot slug has exactly one and ``symbol_from_slug`` inverts it.

    Raises:
        ConfigError: not BASE/QUOTE of letters and digits (1-32 each), with an optional
            ``:SETTLE`` and ``-``-separated suffixes of the same alphabet.
    """
    hint = "must look like BASE/QUOTE of letters and digits, e.g. BTC/USDT (or BTC/USDT:USDT)"
    if not isinstance(symbol, str) or "/" not in symbol:
        raise ConfigError(f"symbol {symbol!r} {hint}")
    base, rest = symbol.split("/", 1)
    quote, colon, contract = rest.partition(":")
    parts = [base, quote, *(contract.split("-") if colon else [])]
    if ".." in symbol or not all(_ASSET.fullmatch(p) for p in parts):
        raise ConfigError(f"symbol {symbol[:60]!r} {hint}")
    return "-".join(p.upper() for p in parts)


def symbol_from_slug(slug: str) -> str:
    """The market symbol a file name was made from: the inverse of ``symbol_slug``."""
    base, quote, *contract = slug.split("-")
    return f"{base}/{quote}" + (":" + "-".join(contract) if contract else "")


def check_exchange_name(exchange: str) -> str:
    """An exchange folder name: lower-case letters, digits, ``_`` (a ccxt id fits).

    Raises:
        ConfigError: naming the value.
    """
    if not isinstance(exchange, str) or not _EXCHANGE.fullmatch(exchange):
        raise ConfigError(
            f"exchange {str(exchange)[:60]!r} is not a valid exchange name; use a ccxt id such "
            "as binance (lower-case letters and digits)"
        )
    return exchange


def check_run_name(name: str, key: str = "output.name") -> str:
    """A run folder name (``output.name``, ``tune.study_name``): letters, digits and
    ``_ . = + -``, no path.

    Raises:
        ConfigError: naming the key and the value.
    """
    if not isinstance(name, str) or not _RUN.fullmatch(name):
        raise ConfigError(
            f"{key} {str(name)[:60]!r} is not a valid run name; use letters, digits and "
            "_ . = + - (no / or leading dot), at most 100 characters"
        )
    return name


def check_writable_dir(folder: Path, key: str) -> None:
    """Prove a file can be written in ``folder`` before any work; leaves no folder behind.

    Folders that do not exist yet are created for the test and removed again, so a run that
    fails later leaves nothing half-made.

    Raises:
        StorageError: naming ``key``, the folder and the cause.
    """
    folder = Path(folder)
    missing = []
    p = folder
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    created: list[Path] = []
    try:
        for d in reversed(missing):
            d.mkdir()
            created.append(d)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        if err.filename is None:
            err.filename = str(folder)
        raise StorageError(f"{key}: {describe_os_error(err)}") from None
    finally:
        for d in reversed(created):
            with contextlib.suppress(OSError):
                d.rmdir()
