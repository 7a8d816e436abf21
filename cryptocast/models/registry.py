"""Model registry: name -> builder. One training loop serves every registered model.

A builder is ``fn(cfg: ModelConfig, n_features, horizon, lookback) -> nn.Module`` whose module maps
(B, L, F) to (B, H) in the scaled target space, or to (B, H, Q) quantiles for a quantile model
(``model.quantiles``, see ``cryptocast.models.distribution``). Built-in models register themselves when their
module is imported; the registry imports them lazily so importing it does not import torch.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cryptocast.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn

    from cryptocast.config.schema import ModelConfig

Builder = Callable[["ModelConfig", int, int, int], "nn.Module"]

_BUILDERS: dict[str, Builder] = {}
#: combinations of other models' forecasts (models/combo.py); their members: ``model.members``
COMBINATIONS = ("vol_combo", "vol_select")
_TRAINABLE: dict[str, bool] = {}
_POOLABLE: dict[str, bool] = {}
# The names each built-in module registers, so a name can be checked without importing torch
# (a mistyped --models is rejected at once, not after a multi-second torch import).
# tests/test_models.py keeps this equal to what the modules actually register.
BUILTIN: dict[str, tuple[str, ...]] = {
    "performer": ("performer_bilstm",),
    "recurrent": ("lstm", "gru"),
    "transformer": ("transformer",),
    "naive": ("persistence", "drift"),
    "random_walk": ("rw_ewma", "rw_empirical"),
    "volatility": ("vol_persistence", "har", "ewma_vol", "garch"),
    "har": ("harq", "har_semi", "har_cj", "har_x"),
    "gbm": ("gbm_vol",),
    "vol_quantile": ("fhs_ewma", "fhs_garch", "fhs_har", "t_ewma", "garch_t", "garch_skewt"),
    "combo": COMBINATIONS,
}
_BUILTIN_MODULES = tuple(BUILTIN)
_loaded = False


def register(
    name: str, trainable: bool = True, poolable: bool | None = None
) -> Callable[[Builder], Builder]:
    """Decorator registering a builder under ``name``; ``trainable=False`` for fitted baselines.
    ``poolable`` (default: ``trainable``): ``backtest.pooled`` also fits it as one model over a
    pool of series (a fitted baseline then needs ``fit_pooled`` and ``for_series``)."""

    def deco(fn: Builder) -> Builder:
        if name in _BUILDERS and _BUILDERS[name] is not fn:
            raise ValueError(f"model {name!r} registered twice")
        _BUILDERS[name] = fn
        _TRAINABLE[name] = trainable
        _POOLABLE[name] = trainable if poolable is None else poolable
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


def known_names() -> list[str]:
    """Registered and built-in model names, sorted, without importing the model modules."""
    return sorted({*_BUILDERS, *(n for names in BUILTIN.values() for n in names)})


def check_model_name(name: str, source: str = "model.name") -> None:
    """ConfigError naming ``source`` unless ``name`` is a model; imports no torch."""
    if name not in known_names():
        raise ConfigError(
            f"{source}: unknown model {name!r}; choose one of: {', '.join(known_names())}"
        )


def check_members(cfg: ModelConfig) -> tuple[str, ...]:
    """``cfg.members`` of a combination model, checked without importing torch: ConfigError
    unless it names at least one model, none twice, none itself a combination."""
    names = tuple(cfg.members or ())
    if not names:
        raise ConfigError(
            f"model {cfg.name} combines the models in model.members, which is empty; set e.g. "
            "model.members=[har, ewma_vol, garch]"
        )
    for m in names:
        check_model_name(m, "model.members")
        if m in COMBINATIONS:
            raise ConfigError(f"model.members: {m} is itself a combination; list its members")
    if len(set(names)) < len(names):
        raise ConfigError(f"model.members lists a model twice: {list(names)}")
    return names


def _check_name(name: str) -> None:
    check_model_name(name)
    _ensure_loaded()
    if name not in _BUILDERS:  # pragma: no cover - BUILTIN out of step with the modules
        raise ConfigError(f"model {name!r} is listed as built in but no module registers it")


def is_trainable(name: str) -> bool:
    """False for baselines fitted in closed form (``fit_naive``) instead of gradient descent."""
    _check_name(name)
    return _TRAINABLE[name]


def is_poolable(name: str) -> bool:
    """Whether ``backtest.pooled`` fits ``name`` over the pool: the models trained by gradient
    descent and ``gbm_vol``; the closed-form baselines run per series only."""
    _check_name(name)
    return _POOLABLE[name]


def build_model(cfg: ModelConfig, n_features: int, horizon: int, lookback: int) -> Any:
    """Build the model named ``cfg.name`` for (B, lookback, n_features) -> (B, horizon) inputs."""
    _check_name(cfg.name)
    for label, value in (("n_features", n_features), ("horizon", horizon), ("lookback", lookback)):
        if int(value) <= 0:
            raise ConfigError(f"{label} must be positive to build model {cfg.name!r}, got {value}")
    if _TRAINABLE[cfg.name]:
        check_memory(cfg, int(n_features), int(horizon), int(lookback))
    return _BUILDERS[cfg.name](cfg, int(n_features), int(horizon), int(lookback))


#: bytes a float32 parameter costs while training: itself, its gradient, AdamW's two moments
TRAINING_BYTES_PER_PARAMETER = 16


def check_memory(
    cfg: ModelConfig, n_features: int, horizon: int, lookback: int, available: int | None = None
) -> None:
    """Refuse a model whose training state would not fit in memory, before allocating it.

    The model is built on torch's ``meta`` device (shapes only, no storage) to count its
    parameters; within the config's per-key bounds (``config/fields.py``) a combination of the
    largest sizes still asks for 50-190 GB, which would end in an allocator traceback or the OOM
    killer. ``available``: bytes (default: the system's MemAvailable; no check where unknown).
    """
    _check_name(cfg.name)
    available = available if available is not None else _memory_available()
    if available is None:
        return
    params = _parameter_count(cfg.model_dump_json(), n_features, horizon, lookback)
    need = params * TRAINING_BYTES_PER_PARAMETER
    if need > available:
        raise ConfigError(
            f"model {cfg.name} at these sizes has {params / 1e6:,.0f} M parameters: training "
            f"needs about {need / 1e9:,.1f} GB (weights, gradients, AdamW state) but "
            f"{available / 1e9:,.1f} GB of memory is available; lower model.d_model, "
            "n_layers, hidden_size, lstm_hidden or dim_feedforward"
        )


@functools.lru_cache(maxsize=64)
def _parameter_count(cfg_json: str, n_features: int, horizon: int, lookback: int) -> int:
    """Parameters of the model ``cfg_json`` describes, built on the meta device (cached: a
    walk-forward builds the same model at every refit)."""
    import torch

    from cryptocast.config.schema import ModelConfig

    cfg = ModelConfig.model_validate_json(cfg_json)
    with torch.device("meta"):
        model = _BUILDERS[cfg.name](cfg, n_features, horizon, lookback)
    return sum(p.numel() for p in model.parameters())


def _memory_available() -> int | None:
    """MemAvailable from ``/proc/meminfo`` in bytes (None where there is none)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
