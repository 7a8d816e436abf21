"""``cryptocast train``: fit one model from a config and write a run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cryptocast.cli.app import ConfigOpt, DataDirOpt, SetOpt, app, console


@app.command()
def train(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    data_dir: DataDirOpt = Path("data"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No per-epoch output.")] = False,
) -> None:
    """Train the model in --config (override keys with --set section.key=value).

    Writes runs/{name}-{timestamp}/ with checkpoint.pt, metrics.json and config.yaml.
    """

    from rich.table import Table

    from cryptocast.config import load_config
    from cryptocast.runs import train_run
    from cryptocast.train import prefer_passive_openmp

    prefer_passive_openmp()  # before anything below loads torch

    cfg = load_config(config, set_ or [])
    d, m = cfg.data, cfg.model
    console.print(
        f"training [bold]{m.name}[/] on {d.exchange} {d.symbol} {d.timeframe} "
        f"(lookback {cfg.features.lookback}, horizon {cfg.features.horizon}, config {cfg.hash()})"
    )

    def on_epoch(row: dict) -> None:
        if not quiet:
            console.print(
                f"  epoch {row['epoch']:>3}  train {row['train_loss']:.5f}  "
                f"val {row['val_loss']:.5f}  lr {row['lr']:.2e}  {row['seconds']:.1f}s"
            )

    result = train_run(cfg, data_dir, on_epoch)
    met = result.metrics
    cols = ("rmse", "mae", "mape", "directional_accuracy", "skill_rmse")
    table = Table(title=f"{m.name}: test segment ({met['n_windows'].get('test', 0)} windows)")
    for col in cols:
        table.add_column(col, justify="right")
    t = met.get("test") or {}
    table.add_row(*(f"{t[c]:.4g}" if isinstance(t.get(c), (int, float)) else "-" for c in cols))
    console.print(table)
    console.print(
        f"best epoch {met['best_epoch']}, {met['train_seconds']:.1f}s; run saved to [bold]{result.run_dir}[/]"
    )
