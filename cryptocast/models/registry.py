"""Model registry: name -> builder. One training loop serves every registered model.

A builder is ``fn(cfg: ModelConfig, n_features, horizon, lookback) -> nn.Module`` whose module maps
(B, L, F) to (B, H) in the scaled target space, or to (B, H, Q) quantiles for a quantile model
(``model.quantiles``, see ``cryptocast.distribution``). Built-in models register themselves when their
module is imported; the registry imports them lazily so importing it does not import torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cryptocast.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn

    from cryptocast.config import ModelConfig

Builder = Callable[["ModelConfig", int, int, int], "nn.Module"]

_BUILDERS: dict[str, Builder] = {}
_TRAINABLE: dict[str, bool] = {}
_BUILTIN_MODULES = ("performer", "recurrent", "transformer", "naive", "random_walk")
_loaded = False


def register(name: str, trainable: bool = True) -> Callable[[Builder], Builder]:
    """Decorator registering a builder under ``name``; ``trainable=False`` for fitted baselines."""

    def deco(fn: Builder) -> Builder:
        if name in _BUILDERS and _BUILDERS[name] is not fn:
            raise ValueError(f"model {name!r} registered twice")
        _BUILDERS[name] = fn
        _TRAINABLE[name] = trainable
        return fn

    return deco


def _ensure_loaded() -> None:
    global _loaded
    if not _loaded:
        for mod in _BUILTIN_MODULES:
            importlib.import_module(f"cryptocast.models.{mod}")
        _loaded = True


def model_names() -> list[str]:
    """Registered model names, sorted."""
    _ensure_loaded()
    return sorted(_BUILDERS)


def _check_name(name: str) -> None:
    _ensure_loaded()
    if name not in _BUILDERS:
        raise ConfigError(
            f"model.name: unknown model {name!r}; choose one of: {', '.join(model_names())}"
        )


def is_trainable(name: str) -> bool:
    """False for baselines fitted in closed form (``fit_naive``) instead of gradient descent."""
    _check_name(name)
    return _TRAINABLE[name]


def build_model(cfg: ModelConfig, n_features: int, horizon: int, lookback: int) -> Any:
    """Build the model named ``cfg.name`` for (B, lookback, n_features) -> (B, horizon) inputs."""
    _check_name(cfg.name)
    for label, value in (("n_features", n_features), ("horizon", horizon), ("lookback", lookback)):
        if int(value) <= 0:
            raise ConfigError(f"{label} must be positive to build model {cfg.name!r}, got {value}")
    return _BUILDERS[cfg.name](cfg, int(n_features), int(horizon), int(lookback))
