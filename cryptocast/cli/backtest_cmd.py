"""``cryptocast backtest``: walk-forward evaluation of every model against the naive baselines."""

from __future__ import annotations

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
)
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
) -> None:
    """Walk-forward backtest of every model beside persistence and drift; writes a report.

    Per fold, scalers and models are fit on past data only, then the fold is forecast and every
    model is scored (error metrics, skill, DM tests, a cost-aware trading simulation). The report
    folder holds forecasts, summary.json, report.md and plots.
    """
    from cryptocast.api.common import as_names, with_settings
    from cryptocast.config.schema import load_config
    from cryptocast.evaluate.backtest import validate

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

    from cryptocast.evaluate.report import COMPACT_COLUMNS, results_tables

    header = (
        f"backtest {', '.join(bt.models)} on {', '.join(bt.symbols)} x {', '.join(bt.timeframes)} "
        f"({bt.window}, fold {bt.fold_length}, retrain every {bt.retrain_every}, "
        f"{_where(executor, bt.workers, ray_address)}, config {cfg.hash()})"
    )
    from cryptocast.config.names import check_writable_dir

    check_writable_dir(Path(bt.report_dir), "--report")  # before the work, not after it
    result = _run_with_progress(cfg, data_dir, header, executor, ray_address)
    summary = result.summary
    columns = None
    if bt.metrics:
        columns = ["n", *[m for m in bt.metrics if m != "n"]]
    full = results_tables(summary["results"], columns)
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
    path = result.save(bt.report_dir)
    console.print(
        f"report written to [bold]{escape(str(path))}[/] (report.md, summary.json, forecasts.parquet)"
    )


def _where(executor: str, workers: int, ray_address: str | None) -> str:
    if executor == "ray":
        return f"ray at {ray_address}" if ray_address else "local ray"
    return f"{workers} worker(s)"


def _run_with_progress(
    cfg, data_dir: Path, header: str, executor: str = "local", ray_address: str | None = None
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
        )

    grid = GridProgress()
    if not console.is_terminal:

        def on_line(ev: dict) -> None:
            kind = grid.update(ev)
            if kind == "plan":
                console.print(header)
                console.print(
                    f"plan: {grid.jobs} jobs, {grid.folds} folds", markup=False, highlight=False
                )
            elif kind == "job" and not ev.get("ok", True):
                console.print(f"job {' '.join(ev['job'])} failed: {ev['error']}", markup=False)
            elif kind == "fold":
                console.print(grid.line(), markup=False, highlight=False)

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
