"""The typer app, the shared option definitions, and the one place errors become exit codes.

Every command module registers itself on ``app``; nothing below the CLI prints or exits.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from typer.core import TyperGroup

from cryptocast.errors import CryptocastError

# Wide when piped (cron mail, CI logs) so result tables are not truncated to 80 columns.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)

_state = {"debug": False}


class _Group(TyperGroup):
    """Maps the library's exceptions to a one-line red message and an exit code."""

    def invoke(self, ctx):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except CryptocastError as err:
            if _state["debug"]:
                raise
            err_console.print(
                f"[bold red]error:[/] {err}", markup=True, highlight=False, soft_wrap=True
            )
            raise typer.Exit(err.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("[red]interrupted[/]")
            raise typer.Exit(130) from None


app = typer.Typer(
    cls=_Group,
    help="Forecast crypto prices with a Performer/BiLSTM and honest baselines.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
) -> None:
    """cryptocast: fetch -> features -> train -> backtest -> forecast."""
    _state["debug"] = debug


# ---- shared option definitions (written once, used by every command) ----
DataDirOpt = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar="CRYPTOCAST_DATA_DIR",
        help="Data folder (candles, features, forecasts).",
    ),
]
ExchangeOpt = Annotated[str, typer.Option("--exchange", help="ccxt exchange id.")]
ExchangeUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--exchange-url",
        envvar="CRYPTOCAST_EXCHANGE_URL",
        help="Base URL the exchange's REST paths are appended to (a mirror or a local fake exchange).",
    ),
]
SymbolOpt = Annotated[
    list[str] | None,
    typer.Option("--symbol", "-s", help="Market symbol, e.g. BTC/USDT (repeatable)."),
]
TimeframeOpt = Annotated[
    list[str] | None,
    typer.Option("--timeframe", "-t", help="Candle timeframe, e.g. 1h or 1d (repeatable)."),
]
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a config key: section.key=value (repeatable)."),
]


def main() -> None:
    """Console-script entry point."""
    sys.exit(app())
