"""Conventions every API function shares: a config from a ``Config``, a YAML path or the defaults, plus ``--set``-style overrides (see :mod:`cryptocast.api`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cryptocast.config.schema import Config

    ConfigLike = Config | str | Path | None  # a Config, a YAML path, or None (the defaults)
    Overrides = Sequence[str] | str | None  # ``section.key=value`` strings, like ``--set``
    PathLike = str | Path


def load_config(config: ConfigLike = None, overrides: Overrides = None) -> Config:
    """Load and validate a config, the way every command reads ``--config`` and ``--set``.

    Args:
        config: a YAML file (``configs/tiny.yaml``), a ``Config`` (returned as is when there
            are no overrides), or None for the built-in defaults.
        overrides: ``section.key=value`` strings applied on top, parsed like ``--set`` (YAML
            scalars and lists: ``"train.epochs=1"``, ``"backtest.models=[lstm, persistence]"``).
            A single string counts as one override.

    Returns:
        The validated, typed ``Config``.

    Raises:
        ConfigError: the file is missing or not YAML, an override is malformed, or a value is
            invalid (the message names the file or the override that set it).
    """
    from cryptocast.config.schema import (
        Config,
        apply_overrides,
        config_from_dict,
        override_sources,
    )
    from cryptocast.config.schema import load_config as load_yaml

    items = _overrides(overrides)
    if isinstance(config, Config):
        if not items:
            return config
        raw = apply_overrides(config.to_dict(), items)
        return config_from_dict(raw, "config", override_sources(items))
    return load_yaml(config, items)


def _overrides(overrides: Overrides) -> list[str]:
    if overrides is None:
        return []
    if isinstance(overrides, str):
        return [overrides]
    return [str(o) for o in overrides]


def as_names(value: str | Sequence[str] | None, commas: bool = False) -> list[str] | None:
    """None, one name, or several; ``commas``: ``"lstm,persistence"`` is two names."""
    if value is None:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()] if commas else [value]
    return [str(v) for v in value]


def _source(config: ConfigLike) -> str:
    """How errors name where a config came from (the CLI's wording for paths and defaults)."""
    if config is None:
        return "defaults"
    return str(config) if isinstance(config, (str, Path)) else "config"


def with_settings(
    cfg: Config, settings: dict[str, tuple[str, Any]], overrides: list[str]
) -> Config:
    """``cfg`` with ``{dotted key: (label, value)}`` applied (None values skipped), validated by
    the same typed config; an invalid value's error names its label (a keyword or an option)."""
    from cryptocast.config.schema import config_from_dict, override_sources

    if all(value is None for _, value in settings.values()):
        return cfg
    raw = cfg.to_dict()
    blame = override_sources(overrides)
    for key, (label, value) in settings.items():
        if value is None:
            continue
        section, name = key.split(".")
        raw[section][name] = value
        blame[key] = label
    return config_from_dict(raw, "config", blame)


# ---- fetch ----
