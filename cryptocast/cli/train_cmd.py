"""``cryptocast train``: fit one model from a config and write a run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from cryptocast.cli.app import ConfigOpt, DataDirOpt, SetOpt, app, console, note_thread_cap
from cryptocast.cli.progress import EpochProgress


@app.command()
def train(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    data_dir: DataDirOpt = Path("data"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No per-epoch output.")] = False,
) -> None:
    """Train the model in --config (override keys with --set section.key=value).

    Writes runs/{name}-{timestamp}/ with checkpoint.pt, metrics.json and config.yaml. With
    train.refit_all (default) the checkpoint holds a refit on every stored row for the best epoch.
    With backtest.pooled, one model over backtest.symbols and train.universe (docs/global.md).
    """

    from cryptocast.api import load_config
    from cryptocast.api import train as train_model

    cfg = load_config(config, set_)  # dates, types, keys: before data or torch
    note_thread_cap(cfg)
    d, m = cfg.data, cfg.model

    from rich.table import Table

    what, series = f"[bold]{m.name}[/]", d.symbol
    if cfg.backtest.pooled:  # one model over the evaluated symbols and the training-only ones
        extra = [u for u in cfg.train.universe if u not in cfg.backtest.symbols]
        what, series = f"{what} pooled", ", ".join(cfg.backtest.symbols)
        series += f" (+ training-only {', '.join(extra)})" if extra else ""
    header = (
        f"training {what} on {d.exchange} {series} {d.timeframe} "
        f"(lookback {cfg.features.lookback}, horizon {cfg.features.horizon}, config {cfg.hash()})"
    )
    with EpochProgress(console, header, quiet) as progress:
        # checks the model name (naming the --set or file that set it), plans the threads, fits
        result = train_model(
            config, set_, data_dir=data_dir, on_epoch=progress.on_epoch, on_batch=progress.on_batch
        )
    met = result.metrics
    cols = ("rmse", "mae", "mape", "directional_accuracy", "skill_rmse")
    if cfg.features.target == "realized_vol":  # annualised volatility: no price scores
        cols = ("rmse_vol", "mae_vol", "qlike", "mz_r2")
    table = Table(title=f"{m.name}: test segment ({met['n_windows'].get('test', 0)} windows)")
    pooled = met.get("pooled")
    tests = met.get("test") or {}
    rows = [(s, tests.get(s) or {}) for s in pooled["evaluated"]] if pooled else [("", tests)]
    if pooled:  # one row per evaluated symbol, each on its own test windows
        table.add_column("symbol")
    for col in cols:
        table.add_column(col, justify="right")
    for symbol, t in rows:
        cells = [f"{t[c]:.4g}" if isinstance(t.get(c), (int, float)) else "-" for c in cols]
        table.add_row(*([symbol] if pooled else []), *cells)
    console.print(table)
    refit = met["deployed"]["refit"]
    if refit:
        console.print(
            f"refit on all {refit['rows']:,} rows up to {refit['last'][:16]} for "
            f"{refit['epochs']} epoch(s), {refit['seconds']:.1f}s: the checkpoint holds these "
            "weights (the test figures above are the validated run's)"
        )
    console.print(
        f"best epoch {met['best_epoch']}, {met['train_seconds']:.1f}s; "
        f"run saved to [bold]{escape(str(result.run_dir))}[/]"
    )
    if result.tracking_run:
        _print_tracked(cfg)


def _print_tracked(cfg) -> None:
    """Where ``tracking.enabled`` logged the run (train, backtest and tune print it alike)."""
    from cryptocast.api.tracking import tracking_uri

    t = cfg.tracking
    console.print(
        f"logged to MLflow experiment {t.experiment!r} at {tracking_uri(t.uri)}",
        markup=False,
        highlight=False,
    )
