"""cryptocast: honest cryptocurrency price forecasting.

fetch -> store -> features -> windows -> models -> train -> backtest / forecast.
Heavy dependencies (torch, ccxt, ta) are imported lazily inside the modules that need them,
so ``cryptocast --help`` starts fast.
"""

__version__ = "0.1.0"
