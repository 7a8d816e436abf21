"""Exception hierarchy. Raised anywhere in the library, caught once in the CLI.

Each class carries the exit code the CLI maps it to. Messages are one line and say what to do.
"""

from __future__ import annotations


class CryptocastError(Exception):
    """Base class for every error the CLI reports without a traceback."""

    exit_code = 1


class ConfigError(CryptocastError):
    """A config file, a ``--set`` override or a command-line option is invalid."""

    exit_code = 2


class DataError(CryptocastError):
    """Stored or imported data is missing, unreadable, or has the wrong schema."""

    exit_code = 3


class ExchangeError(CryptocastError):
    """The exchange could not be reached or rejected a request (after retries)."""

    exit_code = 4


class StaleDataError(CryptocastError):
    """The newest stored candle is too old to forecast from."""

    exit_code = 5


class LockedError(CryptocastError):
    """Another cryptocast process holds the lock on the same resource."""

    exit_code = 6


class CheckpointError(CryptocastError):
    """A checkpoint or run directory is missing, corrupt, or does not match the data."""

    exit_code = 7


class PartialFailure(CryptocastError):
    """Some series failed while others succeeded (the per-series messages were already shown)."""

    exit_code = 8


def brief(err: BaseException, limit: int = 120) -> str:
    """The first line of a third-party error, cut at a word boundary (with "...") when long, so
    a message quoting it never ends mid-word."""
    text = str(err).strip()
    line = text.splitlines()[0] if text else type(err).__name__
    if len(line) <= limit:
        return line
    cut = line[:limit].rsplit(" ", 1)[0].rstrip(",;:(")
    return f"{cut} ..."
