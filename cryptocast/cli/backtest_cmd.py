"""``cryptocast backtest``: walk-forward evaluation of every model against the naive baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cryptocast.cli.app import ConfigOpt, DataDirOpt, SetOpt, SymbolOpt, TimeframeOpt, app, console

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
) -> None:
    """Walk-forward backtest: per fold, fit scalers and models on past data only, forecast the
    fold, then score every model beside persistence and drift (error metrics, skill, DM tests,
    a cost-aware trading simulation). Writes a report folder (forecasts, summary.json, report.md,
    plots).
    """
    from cryptocast.backtest import summarise
    from cryptocast.config import load_config
    from cryptocast.evaluate.report import results_tables, write_report

    overrides = list(set_ or [])
    flags = {
        "backtest.models": _csv(models),
        "backtest.symbols": symbol,
        "backtest.timeframes": timeframe,
        "backtest.report_dir": str(report) if report else None,
        "backtest.test_start": test_start,
        "backtest.test_end": test_end,
        "backtest.fold_length": fold_length,
        "backtest.window": window,
        "backtest.retrain_every": retrain_every,
        "features.horizon": horizon,
        "backtest.workers": workers,
        "backtest.metrics": _csv(metrics),
    }
    cfg = load_config(config, overrides)
    cfg = _apply_flags(cfg, flags)
    if fold_length is not None:  # an explicit --fold-length beats a config's fold_period
        cfg.backtest.fold_period = None
    bt = cfg.backtest
    console.print(
        f"backtest {', '.join(bt.models)} on {', '.join(bt.symbols)} x {', '.join(bt.timeframes)} "
        f"({bt.window}, fold {bt.fold_length}, retrain every {bt.retrain_every}, "
        f"{bt.workers} worker(s), config {cfg.hash()})"
    )
    results = _run_with_progress(cfg, data_dir)
    summary, forecasts, equity = summarise(cfg, results)
    columns = None
    if bt.metrics:
        columns = ["n", *[m for m in bt.metrics if m != "n"]]
    for table in results_tables(summary["results"], columns):
        console.print(table)
    suspects = [r for r in summary["results"] if r.get("leakage_suspect")]
    for r in suspects:
        console.print(
            f"[bold yellow]warning:[/] {r['model']} on {r['symbol']} {r['timeframe']} has skill "
            f"{r['skill_rmse']:.2f} vs persistence: implausible, check its inputs for look-ahead"
        )
    path = write_report(bt.report_dir, forecasts, summary, equity)
    console.print(f"report written to [bold]{path}[/] (report.md, summary.json, forecasts.parquet)")


def _csv(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


def _apply_flags(cfg, flags: dict):
    """Command-line flags override the config; validated by the same typed config."""
    from cryptocast.config import config_from_dict

    raw = cfg.to_dict()
    for key, value in flags.items():
        if value is None:
            continue
        section, name = key.split(".")
        raw[section][name] = value
    return config_from_dict(raw, "command line")


def _run_with_progress(cfg, data_dir: Path):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from cryptocast.backtest import run_backtest

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        tasks: dict[str, int] = {}

        def on_event(ev: dict) -> None:
            kind = ev.get("event")
            if kind == "plan":
                tasks["jobs"] = progress.add_task("jobs ", total=ev["jobs"])
                tasks["folds"] = progress.add_task("folds", total=ev["folds"])
            elif kind == "job":
                progress.advance(tasks["jobs"])
            elif "fold" in ev and "folds" in tasks:
                progress.advance(tasks["folds"])

        return run_backtest(cfg, data_dir, on_event)
