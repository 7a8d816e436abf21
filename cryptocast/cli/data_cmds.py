"""``cryptocast fetch`` (exchange or local files -> Parquet store) and ``cryptocast data``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from cryptocast.cli.app import (
    DataDirOpt,
    ExchangeOpt,
    ExchangeUrlOpt,
    SymbolOpt,
    TimeframeOpt,
    app,
    console,
    err_console,
    print_error,
    printable,
    stamp_errors,
    utc_stamp,
)
from cryptocast.cli.output import FormatOpt, emit, use_format
from cryptocast.cli.tables import print_table

_COLUMNS = (
    "rows", "first", "last", "gaps", "missing", "largest", "dupes", "zero vol", "OHLC bad",
    "vol jumps",
)  # fmt: skip
# what an import reports beside the integrity figures: re-imported equal candles are "unchanged",
# not duplicates; "replaced" counts stored candles an --overwrite import changed
_IMPORT_EXTRA = (("new_candles", "new"), ("unchanged", "unchanged"), ("replaced", "replaced"))


def _warn(r: dict[str, Any]) -> bool:
    return bool(r["gaps"] or r["zero_volume"] or r["ohlc_violations"] or r.get("volume_jumps"))


def _print_table(rows: list[dict[str, Any]], title: str, extra=()) -> None:
    """The full integrity table when it fits (always when piped), else the compact one."""
    print_table(
        console,
        integrity_table(rows, title, extra),
        lambda: integrity_table(rows, title, extra, compact=True),
    )


def _record_columns(rows: list[dict[str, Any]]) -> list[str]:
    """``--format csv|json`` columns: every key of the rows in first-seen order, ``error`` last."""
    cols = dict.fromkeys(k for r in rows for k in r if k != "error")
    return [*cols, "error"] if cols or rows else ["exchange", "symbol", "timeframe", "error"]


def _fmt_ts(ts: Any, timeframe: str) -> str:
    if ts is None:
        return "-"
    return ts.strftime("%Y-%m-%d" if timeframe.endswith(("d", "w")) else "%Y-%m-%d %H:%M")


def integrity_table(
    rows: list[dict[str, Any]],
    title: str,
    extra: tuple[tuple[str, str], ...] = (),
    compact: bool = False,
):
    """A rich table of integrity reports; each row has exchange/symbol/timeframe + report keys.

    ``extra`` adds leading (key, header) columns such as new candles and requests. ``compact``
    fits 80 columns: dates only, gaps as "count (missing)", the rare flags in one column.
    """
    from rich.table import Table

    if compact:
        return _compact_integrity_table(rows, title, extra)
    table = Table(title=title, title_justify="left")
    table.add_column("series", no_wrap=True)
    for col in tuple(h for _, h in extra) + _COLUMNS:
        table.add_column(col, justify="right", no_wrap=col in ("first", "last"))
    table.add_column("status", overflow="fold")
    for r in rows:
        name = f"{r['exchange']} {r['symbol']} {r['timeframe']}"
        if r.get("error"):
            blanks = ["-"] * (len(extra) + len(_COLUMNS))
            table.add_row(name, *blanks, f"[red]{escape(printable(r['error']))}[/]")
            continue
        tf = r["timeframe"]
        warn = _warn(r)
        table.add_row(
            name,
            *(f"{r[k]:,}" for k, _ in extra),
            f"{r['rows']:,}",
            _fmt_ts(r["first"], tf),
            _fmt_ts(r["last"], tf),
            str(r["gaps"]),
            f"{r['missing']:,}",
            str(r["largest_gap"]),
            f"{r['duplicates_dropped']:,}",
            str(r["zero_volume"]),
            f"[red]{r['ohlc_violations']}[/]" if r["ohlc_violations"] else "0",
            f"[yellow]{r['volume_jumps']}[/]" if r.get("volume_jumps") else "0",
            "[yellow]check gaps/flags[/]" if warn else "[green]ok[/]",
        )
    return table


def _compact_integrity_table(rows: list[dict[str, Any]], title: str, extra) -> Any:
    """Series, status, and the figures as one wrapped phrase: readable at any width, nothing cut."""
    from rich import box
    from rich.table import Table

    exchanges = {r["exchange"] for r in rows}
    one = len(exchanges) == 1
    table = Table(
        title=f"{title} ({next(iter(exchanges))})" if one else title,
        box=box.SIMPLE,
        title_justify="left",
    )
    table.add_column("series", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("details", ratio=1)
    for r in rows:
        name = f"{r['symbol']} {r['timeframe']}"
        name = name if one else f"{r['exchange']} {name}"
        if r.get("error"):
            table.add_row(name, "[red]error[/]", f"[red]{escape(printable(r['error']))}[/]")
            continue
        tf = r["timeframe"]
        parts = [f"{r['rows']:,} rows"]
        news = [f"{r[k]:,} {h}" for k, h in extra]
        if news:
            parts[0] += f" ({', '.join(news)})"
        parts.append(f"{_fmt_ts(r['first'], tf)} .. {_fmt_ts(r['last'], tf)}")
        gaps = (
            f"{r['gaps']} gaps ({r['missing']:,} missing, largest {r['largest_gap']})"
            if r["gaps"]
            else "no gaps"
        )
        parts.append(gaps)
        for key, label in (
            ("duplicates_dropped", "duplicates dropped"),
            ("zero_volume", "zero-volume"),
            ("ohlc_violations", "OHLC violations"),
            ("volume_jumps", "volume jumps (over 20x the neighbours')"),
        ):
            if r.get(key):
                parts.append(f"{r[key]:,} {label}")
        table.add_row(name, "[yellow]check[/]" if _warn(r) else "[green]ok[/]", "; ".join(parts))
    return table


@app.command()
def fetch(
    symbol: SymbolOpt = None,
    timeframe: TimeframeOpt = None,
    exchange: ExchangeOpt = "binance",
    since: Annotated[
        str, typer.Option("--since", help="First candle wanted (UTC date or date time).")
    ] = "2018-01-01",
    until: Annotated[
        str | None,
        typer.Option("--until", help="Stop before this UTC date/time (default: up to now)."),
    ] = None,
    exchange_url: ExchangeUrlOpt = None,
    data_dir: DataDirOpt = Path("data"),
    import_path: Annotated[
        Path | None,
        typer.Option(
            "--import",
            help="Import local files instead of downloading: a Parquet file/folder in the store "
            "schema, freqtrade .feather/.json caches, cryptodatadownload CSV, or Binance "
            "public-data kline CSV/zip. --symbol/--timeframe override what file names say.",
        ),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="With --import: let the files replace stored candles that differ (refused "
            "otherwise, with the count).",
        ),
    ] = False,
) -> None:
    """Download candles into the Parquet store (incremental), or import local candle files.

    Resumes after the last stored candle, never stores the still-open candle, retries network faults with backoff, and prints an integrity report per series.
    """
    from cryptocast.api import fetch_records

    stamp_errors()  # fetch runs from cron: every line it prints starts with the UTC time

    if import_path is not None:
        rows, _ = fetch_records(
            symbol,
            timeframe,
            exchange=exchange,
            data_dir=data_dir,
            import_from=import_path,
            overwrite=overwrite,
        )
        title = escape(
            f"{utc_stamp()} imported from {printable(import_path)} into {printable(data_dir)}"
        )
        _print_table(rows, title, _IMPORT_EXTRA)
        return

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,  # piped/cron: no bar, and no blank line left behind
    ) as bar:
        tasks: dict[str, Any] = {}

        def progress(key: str, done: int, total: int) -> None:
            if key not in tasks:
                tasks[key] = bar.add_task(key, total=total)
            bar.update(tasks[key], completed=done, total=total)

        rows, error = fetch_records(
            symbol,
            timeframe,
            exchange=exchange,
            since=since,
            until=until,
            data_dir=data_dir,
            exchange_url=exchange_url,
            progress=progress,
        )
    for r in rows:
        if r["error"] and len(rows) > 1:  # a single series' error is the final message
            print_error(f"{r['symbol']} {r['timeframe']}: {r['error']}")
    from cryptocast.data.exchange import redact_url

    via = f" via {redact_url(exchange_url)}" if exchange_url else ""
    title = escape(f"{utc_stamp()} fetched from {exchange}{via} into {printable(data_dir)}")
    _print_table(rows, title, (("new_candles", "new"), ("requests", "requests")))
    if error is not None:  # all failed: the first cause's own exit code; some: PartialFailure
        raise error


@app.command()
def data(
    data_dir: DataDirOpt = Path("data"),
    exchange: Annotated[
        str | None, typer.Option("--exchange", help="Only this exchange (default: all).")
    ] = None,
    symbol: SymbolOpt = None,
    timeframe: TimeframeOpt = None,
    fmt: FormatOpt = "table",
) -> None:
    """Show the stored candles: rows, first/last candle, gaps, duplicates, zero volume, OHLC issues."""
    use_format(fmt, console)
    from cryptocast.config.names import check_exchange_name, symbol_from_slug
    from cryptocast.config.timeframes import symbol_slug, validate_timeframe
    from cryptocast.data.integrity import integrity_report
    from cryptocast.data.store import list_series, read_ohlcv
    from cryptocast.errors import ConfigError, CryptocastError, DataError

    for tf in timeframe or []:  # a filter that can never match is a bad option (exit 2)
        validate_timeframe(tf)
    if exchange is not None:
        check_exchange_name(exchange)
    root = data_dir / "ohlcv"
    stored = list_series(data_dir)  # a series of month files (under 1h) is listed once
    files = [p for p in stored if exchange is None or p.parent.name == exchange]
    wanted_sym = {symbol_slug(s) for s in symbol or []}
    rows, bad = [], []
    for path in files:
        slug, tf = path.stem.rsplit("_", 1)
        if (wanted_sym and slug not in wanted_sym) or (timeframe and tf not in timeframe):
            continue
        row: dict[str, Any] = {
            "exchange": path.parent.name,
            "symbol": symbol_from_slug(slug),
            "timeframe": tf,
        }
        try:
            row.update(integrity_report(read_ohlcv(path), tf))
        except CryptocastError as err:
            row["error"] = str(err)
            bad.append(path)
        rows.append(row)
    if not rows and stored:  # the store has candles, just none the filters name
        asked = " ".join(
            f"{flag} {v}"
            for flag, vals in (("--exchange", [exchange] if exchange else []),
                               ("--symbol", symbol or []), ("--timeframe", timeframe or []))
            for v in vals
        )  # fmt: skip
        have = ", ".join(
            f"{p.parent.name} {p.stem.rsplit('_', 1)[0].replace('-', '/', 1)} "
            f"{p.stem.rsplit('_', 1)[1]}"
            for p in stored[:8]
        )
        more = f" and {len(stored) - 8} more" if len(stored) > 8 else ""
        raise ConfigError(f"no stored series matches {asked} in {root}; stored: {have}{more}")
    if not rows:
        console.print(
            f"no candles stored in {root}; run `cryptocast fetch` (or `cryptocast fetch --import PATH`)"
        )
    if fmt != "table":
        emit(rows, _record_columns(rows), fmt)
    elif rows:
        _print_table(rows, f"stored candles in {root}")
    if bad:
        raise DataError(
            f"{len(bad)} stored file(s) unreadable ({', '.join(map(str, bad))}); "
            "move them aside or delete them, then fetch again"
        )
