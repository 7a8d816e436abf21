"""cryptocast: honest cryptocurrency price forecasting.

fetch -> store -> features -> windows -> models -> train -> backtest / forecast.

The Python API (:mod:`cryptocast.api`, docs/api.md) is exported here::

    from cryptocast import fetch, build_features, train, backtest, forecast, load_run, load_config

Those names load lazily (PEP 562 ``__getattr__``), and heavy dependencies (pandas, torch, ccxt,
ta) are imported inside the functions that need them, so ``import cryptocast`` and
``cryptocast --help`` start fast.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = [
    "backtest",
    "build_features",
    "fetch",
    "forecast",
    "load_config",
    "load_run",
    "train",
]


def __getattr__(name: str) -> Any:
    """Load an API function from :mod:`cryptocast.api` on first use."""
    if name in __all__:
        from cryptocast import api

        value = getattr(api, name)
        globals()[name] = value  # later look-ups skip this hook
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
