"""``cryptocast tune``: Optuna search over ``tune.space``, scored before the test period."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cryptocast.cli.app import (
    ConfigOpt,
    DataDirOpt,
    ExecutorOpt,
    RayAddressOpt,
    SetOpt,
    app,
    console,
    note_thread_cap,
)

_Opt = typer.Option


@app.command()
def tune(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    data_dir: DataDirOpt = Path("data"),
    trials: Annotated[
        int | None,
        _Opt(
            "--trials",
            "-n",
            help="Finished trials the study should hold; trials of another run still going on "
            "the same study are not counted.",
        ),
    ] = None,
    timeout: Annotated[
        float | None, _Opt("--timeout", help="Seconds after which no new trial starts.")
    ] = None,
    seed: Annotated[int | None, _Opt("--seed", help="TPE sampler seed.")] = None,
    storage: Annotated[
        str | None,
        _Opt(
            "--storage",
            help="Optuna database URL shared by several machines (default: SQLite "
            "under runs/tune/<study>/).",
        ),
    ] = None,
    study: Annotated[
        str | None, _Opt("--study-name", help="Study name (default: model-symbol-timeframe).")
    ] = None,
    workers: Annotated[int, _Opt("--workers", "-j", help="Parallel trial processes.")] = 1,
    executor: ExecutorOpt = "local",
    ray_address: RayAddressOpt = None,
) -> None:
    """Search hyperparameters declared in tune.space with Optuna (TPE, median pruning over the
    walk-forward folds). Each trial is scored on the tuning period, which ends before
    backtest.test_start; a period touching the test period is refused. Rerunning resumes the
    study. Writes best.yaml (train/backtest accept it) and history.png beside the study.
    """
    from cryptocast.api.tracking import check_tracking, log_tune
    from cryptocast.cli.train_cmd import _print_tracked
    from cryptocast.config.schema import config_from_dict, load_config
    from cryptocast.errors import ConfigError
    from cryptocast.executor import EXECUTORS

    if executor not in EXECUTORS:
        raise typer.BadParameter(f"use one of {', '.join(EXECUTORS)}", param_hint="--executor")
    if workers < 1:  # one line, as backtest reports its --workers
        raise ConfigError(f"--workers {workers}: input should be greater than 0")
    cfg = load_config(config, list(set_ or []))
    raw = cfg.to_dict()
    flags = {"trials": trials, "timeout": timeout, "seed": seed, "storage": storage}
    raw["tune"].update({k: v for k, v in {**flags, "study_name": study}.items() if v is not None})
    cfg = config_from_dict(raw, "command line")
    note_thread_cap(cfg)
    tu = cfg.tune
    console.print(
        f"tune {cfg.model.name} on {cfg.data.symbol} {cfg.data.timeframe}: "
        f"{', '.join(tu.space) or 'no space'}; {tu.metric}, up to {tu.trials} trials, "
        f"{'ray' if executor == 'ray' else f'{workers} worker(s)'}, config {cfg.hash()}"
    )
    check_tracking(cfg)  # MLflow installed, its folder writable: before the study
    result = _run_with_progress(cfg, data_dir, executor, workers, ray_address)
    _print_result(result, tu.metric)
    if log_tune(cfg, result):
        _print_tracked(cfg)


def _run_with_progress(cfg, data_dir: Path, executor: str, workers: int, ray_address):
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from cryptocast.tune.study import run_tune

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[best]}"),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        bar: dict[str, int] = {}

        def on_event(ev: dict) -> None:
            kind = ev.get("event")
            if kind == "plan":
                p = ev
                progress.console.print(
                    f"study {p['study']}: {p['trials']} trial(s) to run, {p['folds']} folds "
                    f"each, at most {p['in_flight']} at once"
                )
                bar["t"] = progress.add_task("trials", total=p["trials"], best="")
            elif kind == "ray":
                progress.console.print(f"ray ready in {ev['startup_seconds']:.1f} s")
            elif kind == "trial":
                best = f"best {ev['best']:.5g}" if ev["best"] is not None else ""
                progress.update(bar["t"], advance=1, best=best)
            elif kind == "trial_failed":  # the study goes on
                why = escape(f"trial {ev['number']} failed: {ev['error']}")
                progress.console.print(f"[red]error[/] {why}", markup=True)

        return run_tune(cfg, data_dir, executor, workers, ray_address, on_event)


def _print_result(result, metric: str) -> None:
    from rich.table import Table

    c = result.counts
    console.print(
        f"study {result.study_name}: {c.get('complete', 0)} complete, {c.get('pruned', 0)} pruned, "
        f"{c.get('fail', 0)} failed; tuning period {result.period['start'][:16]} .. "
        f"{result.period['end'][:16]} (test starts {result.period['test_start'][:16]})"
    )
    if not result.top:
        console.print("no complete trial yet; rerun to continue the study")
        return
    keys = [k for k in result.top[0] if k not in ("number", "value")]
    table = Table(title=f"best trials ({metric} on the tuning period, lower is better)")
    for col in ("trial", metric, *keys):
        table.add_column(col, justify="right")
    for row in result.top:
        vals = [f"{row[k]:.4g}" if isinstance(row[k], float) else str(row[k]) for k in keys]
        table.add_row(str(row["number"]), f"{row['value']:.5g}", *vals)
    console.print(table)
    console.print(
        f"best config written to [bold]{result.best_config}[/] (history plot: {result.plot}); "
        f"evaluate it on the test period: cryptocast backtest --config {result.best_config}"
    )
