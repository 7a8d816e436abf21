"""The public Python API: every stage of the pipeline as a plain function.

    from cryptocast import fetch, build_features, train, backtest, forecast, load_run, load_config

Each function runs the same library code as its ``cryptocast`` command (the CLI calls these
functions), so a notebook and a cron job get the same candles, features, runs, reports and
forecast logs. Nothing here prints; results come back as DataFrames or small result objects, and
failures raise the library's exceptions (:mod:`cryptocast.errors`, each a ``CryptocastError``
whose ``exit_code`` is the CLI's exit status).

Functions that read a config take ``config`` (a :class:`~cryptocast.config.schema.Config`, a YAML
path, or None for the defaults) and ``overrides``, a list of ``section.key=value`` strings (the
CLI's ``--set``). Heavy dependencies (pandas, torch, ccxt) are imported when a function runs, not
when this module is imported. See docs/api.md.
"""

from cryptocast.api.common import load_config
from cryptocast.api.daily import forecast, forecast_each
from cryptocast.api.data import build_features, fetch, fetch_records
from cryptocast.api.evaluation import BacktestResult, backtest
from cryptocast.api.runs import Run, TrainResult, load_run, train

__all__ = [
    "BacktestResult",
    "Run",
    "TrainResult",
    "backtest",
    "build_features",
    "fetch",
    "fetch_records",
    "forecast",
    "forecast_each",
    "load_config",
    "load_run",
    "train",
]
