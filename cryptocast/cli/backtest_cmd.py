"""``cryptocast backtest``: walk-forward evaluation of every model against the naive baselines."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from cryptocast.cli.app import (
    ConfigOpt,
    DataDirOpt,
    ExecutorOpt,
    RayAddressOpt,
    SetOpt,
    SymbolOpt,
    TimeframeOpt,
    app,
    console,
    note_thread_cap,
)
from cryptocast.cli.output import FormatOpt, emit, use_format
from cryptocast.cli.tables import print_table

_Opt = typer.Option


@app.command()
def backtest(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    data_dir: DataDirOpt = Path("data"),
    models: Annotated[
        str | None, _Opt("--models", help="Comma list of models (default: all four + naive).")
    ] = None,
    symbol: SymbolOpt = None,
    timeframe: TimeframeOpt = None,
    report: Annotated[Path | None, _Opt("--report", help="Report folder.")] = None,
    test_start: Annotated[str | None, _Opt("--test-start", help="First forecast date.")] = None,
    test_end: Annotated[str | None, _Opt("--test-end", help="End of the test period.")] = None,
    fold_length: Annotated[int | None, _Opt("--fold-length", help="Candles per fold.")] = None,
    window: Annotated[str | None, _Opt("--window", help="expanding or rolling.")] = None,
    retrain_every: Annotated[int | None, _Opt("--retrain-every", help="Folds per retrain.")] = None,
    horizon: Annotated[int | None, _Opt("--horizon", help="Candles ahead.")] = None,
    workers: Annotated[int | None, _Opt("--workers", "-j", help="Parallel job processes.")] = None,
    metrics: Annotated[
        str | None, _Opt("--metrics", help="Comma list of table columns (metrics) to show.")
    ] = None,
    executor: ExecutorOpt = "local",
    ray_address: RayAddressOpt = None,
    fmt: FormatOpt = "table",
    yes: Annotated[
        bool, _Opt("--yes", "-y", help="Start without asking, however long the estimate.")
    ] = False,
) -> None:
    """Walk-forward backtest of every model beside persistence and drift; writes a report.

    Per fold, scalers and models are fit on past data only, then the fold is forecast and every
    model is scored (error metrics, skill, DM tests, a cost-aware trading simulation). The report
    folder holds forecasts, summary.json, report.md and plots.
    """
    from cryptocast.api.common import as_names, with_settings
    from cryptocast.config.schema import load_config
    from cryptocast.evaluate.backtest import validate

    use_format(fmt, console)  # csv/json: the results rows on stdout, the rest on stderr
    overrides = list(set_ or [])
    flags = {  # config key -> (option, value)
        "backtest.models": ("--models", as_names(models, commas=True)),
        "backtest.symbols": ("--symbol", symbol),
        "backtest.timeframes": ("--timeframe", timeframe),
        "backtest.report_dir": ("--report", str(report) if report else None),
        "backtest.test_start": ("--test-start", test_start),
        "backtest.test_end": ("--test-end", test_end),
        "backtest.fold_length": ("--fold-length", fold_length),
        "backtest.window": ("--window", window),
        "backtest.retrain_every": ("--retrain-every", retrain_every),
        "features.horizon": ("--horizon", horizon),
        "backtest.workers": ("--workers", workers),
        "backtest.metrics": ("--metrics", as_names(metrics, commas=True)),
    }
    from cryptocast.executor import EXECUTORS

    if executor not in EXECUTORS:
        raise typer.BadParameter(f"use one of {', '.join(EXECUTORS)}", param_hint="--executor")
    cfg = load_config(config, overrides)
    cfg = with_settings(cfg, flags, overrides)  # an error names the option that set the value
    if fold_length is not None:  # an explicit --fold-length beats a config's fold_period
        cfg.backtest.fold_period = None
    validate(cfg, data_dir)  # names, metrics, series: before data, torch or any output
    bt = cfg.backtest

    from cryptocast.evaluate.report import COMPACT_COLUMNS, record_columns, results_tables
    from cryptocast.evaluate.report_text import calibration_warning

    header = (
        f"backtest {', '.join(bt.models)} on {', '.join(bt.symbols)} x {', '.join(bt.timeframes)} "
        f"({bt.window}, fold {bt.fold_length}, retrain every {bt.retrain_every}, "
        f"{_where(executor, bt.workers, ray_address)}, config {cfg.hash()})"
    )
    from cryptocast.config.names import check_writable_dir

    check_writable_dir(Path(bt.report_dir), "--report")  # before the work, not after it
    note_thread_cap(cfg)
    from cryptocast.evaluate.estimate import estimate_backtest

    plan = estimate_backtest(cfg, data_dir, executor)  # the run's pre-flight, then a probe
    from cryptocast.errors import PartialFailure

    partial = None
    try:
        result = _run_with_progress(cfg, data_dir, header, executor, ray_address, plan, yes)
    except PartialFailure as err:  # the finished jobs are still shown and written, then exit 8
        result, partial = err.done, err
    summary = result.summary
    columns = None
    if bt.metrics:
        columns = ["n", *[m for m in bt.metrics if m != "n"]]
    if fmt != "table":
        emit(summary["results"], record_columns(summary["results"], columns), fmt)
    full = results_tables(summary["results"], columns) if fmt == "table" else []
    compact = results_tables(summary["results"], COMPACT_COLUMNS, compact=True)
    for i, table in enumerate(full):
        # --metrics: exactly the columns asked for; else all that fit, or the compact set
        print_table(console, table, None if columns else (lambda i=i: compact[i]))
    suspects = [r for r in summary["results"] if r.get("leakage_suspect")]
    for r in suspects:
        what = (
            f"QLIKE skill {r['skill_qlike_persistence']:.2f} vs vol_persistence"
            if "skill_qlike_persistence" in r
            else f"skill {r['skill_rmse']:.2f} vs persistence"
        )
        console.print(
            f"[bold yellow]warning:[/] {r['model']} on {r['symbol']} {r['timeframe']} has {what}: "
            "implausible, check its inputs for look-ahead"
        )
    if calibration := calibration_warning(summary):  # also at the top of report.md
        console.print(f"[bold yellow]warning:[/] {escape(calibration)}")
    path = result.save(bt.report_dir)
    console.print(
        f"report written to [bold]{escape(str(path))}[/] (report.md, summary.json, forecasts.parquet)"
    )
    if cfg.tracking.enabled:  # result.save logged it (cryptocast.api.tracking)
        from cryptocast.cli.train_cmd import _print_tracked

        _print_tracked(cfg)
    if partial is not None:  # after the partial report (its "Failed jobs" section) is written
        raise partial


def _where(executor: str, workers: int, ray_address: str | None) -> str:
    if executor == "ray":
        return f"ray at {ray_address}" if ray_address else "local ray"
    return f"{workers} worker(s)"


def _confirm(plan, yes: bool) -> None:
    """On a terminal, a plan estimated over ``CONFIRM_OVER_S`` asks before it starts (``--yes``
    skips; piped or from cron it proceeds: the estimate is printed either way)."""
    from cryptocast.evaluate.estimate import CONFIRM_OVER_S

    if yes or plan is None or plan.seconds <= CONFIRM_OVER_S or not sys.stdin.isatty():
        return
    if not typer.confirm(f"over {CONFIRM_OVER_S / 60:.0f} minutes: start it?", default=False):
        console.print(
            "not started: narrow the plan (--models, --symbol, --timeframe, --test-start, "
            "--set train.epochs=...) or pass --yes",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(1)


def _plan_line(grid, plan) -> str:
    return plan.describe() if plan is not None else f"plan: {grid.jobs} jobs, {grid.folds} folds"


def _run_with_progress(
    cfg,
    data_dir: Path,
    header: str,
    executor: str = "local",
    ray_address: str | None = None,
    plan=None,
    yes: bool = True,
):
    """Run the backtest (``api.backtest``; the report is written after the tables); the header
    and progress appear only once the pre-flight checks (series, test period, folds) have passed,
    so an error is the only line printed. On a terminal: bars with seconds per fold and an ETA;
    piped: one plain line per fold."""
    from cryptocast.api import backtest
    from cryptocast.cli.grid_progress import GridProgress

    def run_backtest(on_event):
        return backtest(
            cfg,
            data_dir=data_dir,
            write=False,
            executor=executor,
            ray_address=ray_address,
            on_event=on_event,
            reuse=True,  # finished jobs kept beside the report until it is complete
        )

    grid = GridProgress()
    if not console.is_terminal:

        def on_line(ev: dict) -> None:
            kind = grid.update(ev)
            if kind == "plan":
                console.print(header)
                console.print(_plan_line(grid, plan), markup=False, highlight=False, soft_wrap=True)
            elif kind == "job" and not ev.get("ok", True):
                why = f"job {' '.join(ev['job'])} failed: {ev['error']}"
                console.print(why, markup=False, soft_wrap=True)  # one log line, like a fold's
            elif kind == "fold":
                # one log line per fold (grep, cron mail), not wrapped at $COLUMNS like tables
                console.print(grid.line(), markup=False, highlight=False, soft_wrap=True)

        return run_backtest(on_line)

    from cryptocast.cli.progress import progress_bar

    layout = ["{task.description}", "bar", "count", "elapsed", "eta", "left", "{task.fields[rate]}"]
    progress = progress_bar(console, layout, transient=False)
    with ExitStack() as stack:
        tasks: dict[str, int] = {}

        def on_event(ev: dict) -> None:
            kind = grid.update(ev)
            if kind == "plan":
                console.print(header)
                console.print(_plan_line(grid, plan), markup=False, highlight=False, soft_wrap=True)
                _confirm(plan, yes)
                stack.enter_context(progress)
                tasks["jobs"] = progress.add_task("jobs ", total=grid.jobs, rate="")
                tasks["folds"] = progress.add_task("folds", total=grid.folds, rate="")
            elif kind == "job":
                progress.advance(tasks["jobs"])
                if not ev.get("ok", True):  # the other jobs go on; the error is raised at the end
                    why = escape(f"{' '.join(ev['job'])} failed: {ev['error']}")
                    progress.console.print(f"[red]job[/] {why}", markup=True)
            elif kind == "fold" and "folds" in tasks:
                last = f"{grid.last.get('model', '')} {float(grid.last.get('seconds', 0)):.1f} s"
                rate = f"{grid.seconds_per_fold:.1f} s/fold (last {last})"
                progress.update(tasks["folds"], advance=1, rate=rate)

        return run_backtest(on_event)
