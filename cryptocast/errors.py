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
    """Some series failed while others succeeded (the per-series messages were already shown).

    ``done`` carries what did finish (e.g. a backtest's finished jobs) so the caller can keep
    it; ``failed`` names what failed, one record per failure.
    """

    exit_code = 8

    def __init__(self, message: str = "", done: object = None, failed: tuple = ()):
        super().__init__(message)
        self.done, self.failed = done, tuple(failed)


def brief(err: BaseException, limit: int = 120) -> str:
    """The first line of a third-party error, cut at a word boundary (with "...") when long, so
    a message quoting it never ends mid-word."""
    text = str(err).strip()
    line = text.splitlines()[0] if text else type(err).__name__
    if len(line) <= limit:
        return line
    cut = line[:limit].rsplit(" ", 1)[0].rstrip(",;:(")
    return f"{cut} ..."


class StorageError(CryptocastError):
    """The operating system refused a file operation (disk full, read-only, bad path, too long)."""

    exit_code = 9


class TrainingDiverged(CryptocastError):
    """Training produced a non-finite loss; no checkpoint was written."""

    exit_code = 11


_OS_CAUSES = {
    28: "the disk is full; files already stored are intact (every write is atomic): free space "
    "and rerun",
    30: "the file system is read-only: use a writable --data-dir / output folder",
    13: "permission denied: use a folder you can write to",
    1: "operation not permitted: use a folder you can write to",
    20: "a part of the path is a file, not a folder: pick another path",
    21: "this is a folder, not a file: pick a file path",
    36: "a file name is too long: shorten the name (symbol, run name or path)",
    2: "no such file or folder",
    17: "it already exists",
    122: "the disk quota is exceeded; files already stored are intact: free space and rerun",
}


def describe_os_error(err: OSError) -> str:
    """One line for an operating-system error: the path, the cause and what to do."""
    path = err.filename if err.filename is not None else "(no path)"
    if err.filename2 is not None:
        path = f"{path} -> {err.filename2}"
    cause = _OS_CAUSES.get(err.errno or -1) or (err.strerror or type(err).__name__)
    if err.errno in (17, 20) and err.filename is not None:
        import os

        parts = os.path.abspath(os.fsdecode(err.filename)).split(os.sep)
        files = [os.sep.join(parts[:i]) for i in range(2, len(parts) + 1)]
        first_file = next((f for f in files if os.path.isfile(f)), None)
        if first_file is not None:
            return f"{first_file} is a file, not a folder: pick another path (errno {err.errno})"
    code = f" (errno {err.errno})" if err.errno else ""
    return f"{path}: {cause}{code}"


class ModelTooOldError(CryptocastError):
    """The deployed model was trained on candles older than ``forecast.max_model_age``."""

    exit_code = 10
