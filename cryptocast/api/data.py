"""The data and feature stages: candles from an exchange or local files, and the feature table."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptocast.api.common import as_names, load_config

if TYPE_CHECKING:
    import pandas as pd

    from cryptocast.api.common import ConfigLike, Overrides, PathLike
    from cryptocast.errors import CryptocastError


def fetch_records(*args: Any, **kwargs: Any) -> tuple[list[dict[str, Any]], CryptocastError | None]:
    """What :func:`fetch` does, without raising for failed series: the building block the CLI
    prints its table from before it raises.

    Args:
        The arguments of :func:`fetch`, bound to its signature (a wrong name is a TypeError).

    Returns:
        ``(records, error)``: one dict per series (exchange, symbol, timeframe, new_candles,
        requests and error for a download, then the integrity report's keys), and the error
        :func:`fetch` raises for failed series (None when every series worked).

    Raises:
        The errors :func:`fetch` raises up front (bad options, unreadable import files).
    """
    from cryptocast.errors import PartialFailure

    bound = inspect.signature(fetch).bind(*args, **kwargs)
    bound.apply_defaults()
    o = bound.arguments
    data_dir, exchange = Path(o["data_dir"]), o["exchange"]
    syms, tfs = as_names(o["symbols"]), as_names(o["timeframes"])
    if o["import_from"] is not None:
        from cryptocast.data.importers import import_path

        source = Path(o["import_from"])
        reports = import_path(data_dir, source, exchange, syms, tfs, overwrite=o["overwrite"])
        return [{"exchange": exchange, **r} for r in reports], None

    from cryptocast.config.schema import DEFAULT_SYMBOLS, DEFAULT_TIMEFRAMES
    from cryptocast.data.fetch import fetch_many

    reports = fetch_many(
        data_dir,
        exchange,
        syms or list(DEFAULT_SYMBOLS),
        tfs or list(DEFAULT_TIMEFRAMES),
        o["since"],
        o["until"],
        o["exchange_url"],
        o["progress"],
    )
    records = [
        {"exchange": r.exchange, "symbol": r.symbol, "timeframe": r.timeframe,
         "new_candles": r.new_candles, "requests": r.requests, "error": r.error, **r.integrity}
        for r in reports
    ]  # fmt: skip
    failed = [r for r in reports if r.error]
    error: CryptocastError | None = None
    if failed and len(failed) == len(reports) and failed[0].error_type is not None:
        # nothing worked: the first cause, with its own exit code (e.g. 2 for an unknown symbol)
        error = failed[0].error_type(failed[0].error)
    elif failed:
        names = ", ".join(f"{r.symbol} {r.timeframe}" for r in failed)
        error = PartialFailure(
            f"{len(failed)} of {len(reports)} series failed ({names}); fix the cause and rerun fetch"
        )
    return records, error


def fetch(
    symbols: str | Sequence[str] | None = None,
    timeframes: str | Sequence[str] | None = None,
    *,
    exchange: str = "binance",
    since: str | None = "2018-01-01",
    until: str | None = None,
    data_dir: PathLike = "data",
    exchange_url: str | None = None,
    import_from: PathLike | None = None,
    overwrite: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> pd.DataFrame:
    """Download candles into the Parquet store, or import local candle files (``cryptocast fetch``).

    A download resumes after the last stored candle, never stores the still-open candle and
    retries network faults; a failing series does not stop the others (their progress is kept).

    Args:
        symbols: market symbols such as ``"BTC/USDT"`` (one string or a list). Download default:
            the config's default symbols; import default: what the file names say.
        timeframes: candle timeframes such as ``"1d"`` (one or a list); defaults as ``symbols``.
        exchange: ccxt exchange id; for an import, the store folder the series go to.
        since: first candle wanted (UTC date or date time); download only.
        until: stop before this UTC date/time (None: up to now); download only.
        data_dir: the data folder (candles, features, forecast logs).
        exchange_url: base URL the exchange's REST paths are appended to (a mirror or a fake).
        import_from: import this file or folder instead of downloading (Parquet in the store
            schema, freqtrade .feather/.json, cryptodatadownload CSV, Binance kline CSV/zip).
        overwrite: with ``import_from``, let the files replace stored candles that differ.
        progress: called as ``progress(series, done, total)`` while downloading.

    Returns:
        One row per series: exchange, symbol, timeframe, new_candles (plus requests and error
        for a download) and the integrity report (rows, first, last, gaps, missing,
        largest_gap, duplicates_dropped, zero_volume, ohlc_violations).

    Raises:
        ConfigError: unknown exchange, symbol or timeframe, or since >= until.
        DataError: an import file is unreadable or breaks a rule, or would change stored candles
            without ``overwrite``.
        ExchangeError: every series failed to download (the first failure's own type).
        PartialFailure: some series failed; the others were stored.
    """
    records, error = fetch_records(**locals())  # first statement: locals() are the arguments
    import pandas as pd

    if error is not None:
        raise error
    return pd.DataFrame(records)


# ---- features ----
def build_features(
    config: ConfigLike = None,
    overrides: Overrides = None,
    *,
    symbol: str | None = None,
    timeframe: str | None = None,
    exchange: str | None = None,
    data_dir: PathLike = "data",
    force: bool = False,
    trim: bool = False,
) -> pd.DataFrame:
    """The causal feature table of one stored series (``cryptocast features``), cached as Parquet.

    Args:
        config: the ``features`` section to use (and the default series): a ``Config``, a YAML
            path or None for the defaults.
        overrides: ``section.key=value`` strings (``--set``).
        symbol: the series' symbol (default: the config's ``data.symbol``).
        timeframe: the series' timeframe (default: ``data.timeframe``).
        exchange: the store folder (default: ``data.exchange``).
        data_dir: the data folder the candles were fetched into.
        force: rebuild even when the cached table is fresh.
        trim: keep only the rows from ``data.start`` up to ``data.end``, the table ``train``
            reads (``training.runs.load_feature_table``); default: every row.

    Returns:
        One row per candle after the indicators' warm-up: timestamp, OHLCV, the feature columns,
        ``gap_before`` and the targets. ``attrs`` tell rows_in, warmup_dropped, cached and path.

    Raises:
        ConfigError: an invalid config, indicator, symbol or timeframe.
        DataError: no candles stored for the series, or no rows in ``data.start``..``data.end``.
    """
    from cryptocast.config.timeframes import symbol_slug, validate_timeframe
    from cryptocast.features.table import build_features as build
    from cryptocast.features.table import indicator_specs

    cfg = load_config(config, overrides)
    indicator_specs(cfg.features)  # an unknown indicator or parameter stops here, before any work
    exchange = exchange or cfg.data.exchange
    symbol = symbol or cfg.data.symbol
    timeframe = timeframe or cfg.data.timeframe
    symbol_slug(symbol)
    validate_timeframe(timeframe)
    table = build(Path(data_dir), exchange, symbol, timeframe, cfg.features, force=force)
    if not trim:
        return table
    from cryptocast.config.schema import config_from_dict
    from cryptocast.training.runs import load_feature_table

    raw = cfg.to_dict()
    raw["data"].update(exchange=exchange, symbol=symbol, timeframe=timeframe)
    return load_feature_table(config_from_dict(raw), Path(data_dir))


# ---- train ----
