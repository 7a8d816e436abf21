"""The typer app, the shared option definitions, and the one place errors become exit codes.

Every command module registers itself on ``app``; nothing below the CLI prints or exits.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from cryptocast.cli.tables import CliConsole
from cryptocast.errors import CryptocastError, StorageError, describe_os_error

# The terminal's width on a terminal; piped (cron mail, CI logs, `| cat`): $COLUMNS, default 80.
console = CliConsole()
err_console = Console(stderr=True)

_state = {"debug": False, "stamp": False}


def utc_stamp() -> str:
    """``2026-11-29T03:40:12Z``: the wall-clock UTC time that starts a cron-log line."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def stamp_errors() -> None:
    """Start this command's error line with ``utc_stamp()`` (commands meant for cron logs)."""
    _state["stamp"] = True


# Commands in the order data flows through them; any other command (e.g. tune) follows.
PIPELINE_ORDER = ("fetch", "data", "features", "train", "backtest", "forecast")


def _tidy_metavars(params: list) -> list:
    """Help shows ``--force`` rather than ``--force <bool>``, and ``--symbol <str>`` rather than
    ``<list[str]>`` (the help text says "repeatable")."""
    for p in params:
        if getattr(p, "is_flag", False):
            p.metavar = ""
        elif p.metavar is None and getattr(p, "multiple", False) and hasattr(p, "display_type"):
            p.metavar = re.sub(r"^<list\[(.*)\]>$", r"<\1>", p.display_type(None) or "") or None
    return params


class _Group(TyperGroup):
    """Maps the library's exceptions to a one-line red message and an exit code; lists the
    commands in pipeline order."""

    def list_commands(self, ctx):  # type: ignore[override]
        names = list(super().list_commands(ctx))
        first = [n for n in PIPELINE_ORDER if n in names]
        return first + [n for n in names if n not in first]

    def get_params(self, ctx):  # type: ignore[override]
        return _tidy_metavars(super().get_params(ctx))

    def get_command(self, ctx, cmd_name):  # type: ignore[override]
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None:
            _tidy_metavars(cmd.get_params(ctx))
        return cmd

    def invoke(self, ctx):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except CryptocastError as err:
            _show_traceback()
            print_error(str(err))
            raise typer.Exit(err.exit_code) from None
        except OSError as err:  # disk full, read-only folder, a path that cannot exist
            _show_traceback()
            print_error(describe_os_error(err))
            raise typer.Exit(StorageError.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("[red]interrupted[/]")
            raise typer.Exit(130) from None


def _show_traceback() -> None:
    """With ``--debug``: the handled error's traceback on stderr; the exit code stays documented
    (a script testing for 2 or 3 behaves the same with and without ``--debug``)."""
    if _state["debug"]:
        import traceback

        traceback.print_exc(file=sys.stderr)


def note_thread_cap(cfg) -> None:
    """One line when ``train.num_threads`` asks for more threads than the cores available: the
    run uses the cores (``cryptocast.training.threads``), the config is not changed."""
    from cryptocast.training.threads import cap_note

    note = cap_note(cfg.train.num_threads)
    if note:
        console.print(f"note: {note}", markup=False, highlight=False)


# C0/C1 control characters and the bidi overrides: a file name or value holding them would move
# the cursor, clear the screen or reorder text in a terminal or a cron log
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: object) -> str:
    """``text`` with every control character written as an escape (``\\x1b[2J``), so printing a
    user-supplied string (a path, a symbol, an error quoting them) can never drive the terminal."""
    return _CONTROL.sub(lambda m: ascii(m[0])[1:-1], str(text))


def print_error(message: str, prefix: str = "error:") -> None:
    """One red line on stderr; the message is escaped so ``[ns, UTC]`` is printed, not parsed,
    and its control characters are shown, not obeyed (``printable``)."""
    stamp = f"{utc_stamp()} " if _state["stamp"] else ""  # cron-log commands date their lines
    err_console.print(
        f"{stamp}[bold red]{escape(prefix)}[/] {escape(printable(message))}",
        highlight=False,
        soft_wrap=True,
    )


app = typer.Typer(
    cls=_Group,
    help="Forecast crypto prices with a Performer/BiLSTM and honest baselines.",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from cryptocast import __version__

        typer.echo(f"cryptocast {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """cryptocast: fetch -> data -> features -> train -> backtest -> forecast."""
    _state["debug"] = debug
    _state["stamp"] = False
    console.to_stderr = False  # a command's --format csv|json sets it (cli/output.py)


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
ExecutorOpt = Annotated[
    str,
    typer.Option(
        "--executor",
        help="Where jobs run: local (processes here, see --workers) or ray (one Ray task each).",
    ),
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        envvar="RAY_ADDRESS",
        help="Ray cluster address for --executor ray, e.g. 10.0.0.5:6379 (none: a local Ray).",
    ),
]


def main() -> None:
    """Console-script entry point."""
    sys.exit(app())
