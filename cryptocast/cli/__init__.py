"""Command-line interface. ``app`` lives in ``app.py``; each command module registers on it."""

from cryptocast.cli import (  # noqa: F401  (imported for their @app.command registrations)
    backtest_cmd,
    data_cmds,
    features_cmd,
    forecast_cmd,
    train_cmd,
    tune_cmd,
)
from cryptocast.cli.app import app, main

__all__ = ["app", "main"]
