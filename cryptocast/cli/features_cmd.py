"""``cryptocast features``: stored candles -> cached feature tables, one summary row per series."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cryptocast.cli.app import (
    ConfigOpt,
    DataDirOpt,
    SetOpt,
    SymbolOpt,
    TimeframeOpt,
    app,
    console,
    print_error,
)
from cryptocast.cli.output import FormatOpt, emit, use_format
from cryptocast.cli.tables import print_table

# --format csv|json: the table's columns under their machine names
RECORD_COLUMNS = (
    "symbol", "timeframe", "rows_in", "rows_out", "warmup", "gap_rows", "features", "status",
    "output",
)  # fmt: skip


@app.command()
def features(
    symbol: SymbolOpt = None,
    timeframe: TimeframeOpt = None,
    exchange: Annotated[
        str | None,
        typer.Option("--exchange", help="ccxt exchange id (default: the config's data.exchange)."),
    ] = None,
    data_dir: DataDirOpt = Path("data"),
    config: ConfigOpt = None,
    set_: SetOpt = None,
    force: Annotated[
        bool, typer.Option("--force", help="Rebuild even when the cached table is fresh.")
    ] = False,
    fmt: FormatOpt = "table",
) -> None:
    """Compute causal indicator features and targets for stored candles (cached as Parquet)."""
    use_format(fmt, console)
    from rich.table import Table

    from cryptocast.api import build_features, load_config
    from cryptocast.config.schema import DEFAULT_SYMBOLS, DEFAULT_TIMEFRAMES
    from cryptocast.config.timeframes import symbol_slug, validate_timeframe
    from cryptocast.errors import CryptocastError, PartialFailure
    from cryptocast.features.table import feature_columns, indicator_specs

    full = load_config(config, set_ or [])
    cfg = full.features
    exchange = exchange or full.data.exchange
    indicator_specs(cfg)  # an unknown indicator or parameter stops here, before any work
    symbols = symbol or list(DEFAULT_SYMBOLS)
    timeframes = timeframe or list(DEFAULT_TIMEFRAMES)
    for s in symbols:
        symbol_slug(s)
    for tf in timeframes:
        validate_timeframe(tf)
    series = [(s, tf) for s in symbols for tf in timeframes]

    table = Table(title=f"features ({exchange}, {data_dir})")
    table.add_column("series", no_wrap=True)
    for col in ("rows in", "rows out", "warm-up", "gap rows", "features"):
        table.add_column(col, justify="right")
    table.add_column("status")
    table.add_column("output", overflow="fold")
    failures: list[CryptocastError] = []
    records: list[dict] = []
    for s, tf in series:
        try:
            df = build_features(
                full, symbol=s, timeframe=tf, exchange=exchange, data_dir=data_dir, force=force
            )
        except CryptocastError as err:
            if len(series) == 1:
                raise
            failures.append(err)
            print_error(str(err), prefix=f"{s} {tf}: failed:")
            continue
        a = df.attrs
        rec = {
            "symbol": s,
            "timeframe": tf,
            "rows_in": a.get("rows_in"),
            "rows_out": len(df),
            "warmup": a.get("warmup_dropped"),
            "gap_rows": int((df["gap_before"] > 0).sum()),
            "features": len(feature_columns(df)),
            "status": "cached" if a.get("cached") else "built",
            "output": str(a.get("path", "")),
        }
        records.append(rec)
        table.add_row(
            f"{s} {tf}",
            *("?" if rec[k] is None else str(rec[k]) for k in RECORD_COLUMNS[2:]),
        )
    if fmt != "table":
        emit(records, RECORD_COLUMNS, fmt)
    elif table.row_count:
        print_table(console, table)
    if failures and len(failures) == len(series):
        # nothing worked: exit with the first cause's own code, as fetch and forecast do
        first = failures[0]
        raise type(first)(f"all {len(series)} series failed (messages above); first: {first}")
    if failures:
        raise PartialFailure(
            f"{len(failures)} of {len(series)} series failed (messages above); "
            "fix them and re-run `cryptocast features`"
        )
