"""The ``tune.space`` of a config: dotted config keys -> Optuna distributions.

A space entry is one of::

    model.d_model: [32, 64, 128]            # categorical (numbers, strings, booleans)
    train.lr: {log_uniform: [1.0e-4, 1.0e-2]}
    model.dropout: {uniform: [0.0, 0.3]}
    model.n_layers: {int: [1, 3]}

Keys must name a field of the ``model``, ``train`` or ``features`` section: the data, the
backtest (its test period above all) and the tuning setup itself are not searched. Nor are the
keys in :data:`FIXED`, which change what a trial is scored on (scores of two horizons or two
targets do not compare). A ``features.*`` key that changes the feature table (``calendar``,
``log_returns``, ...) gets a table built for its value (:mod:`cryptocast.tune.tables`). The space
is checked when the config loads, so a typo fails before any trial runs.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

SEARCHABLE = ("model", "train", "features")
KINDS = ("log_uniform", "uniform", "int")
# keys that define what is forecast and scored: a study compares trials on one task
FIXED = {
    "features.horizon": "it changes what is forecast, and scores of two horizons do not compare",
    "features.target": "it changes what is forecast and scored; run one study per target",
}


@dataclass(frozen=True)
class Param:
    """One searched key: ``kind`` is ``categorical`` or one of :data:`KINDS`."""

    key: str
    kind: str
    choices: tuple[Any, ...] = ()
    low: float = 0.0
    high: float = 0.0


def _check_key(key: str, fields: Mapping[str, Collection[str]]) -> None:
    parts = key.split(".")
    if len(parts) != 2 or parts[0] not in SEARCHABLE:
        raise ValueError(
            f"tune.space.{key}: search keys are section.key in {', '.join(SEARCHABLE)}, "
            "e.g. model.d_model"
        )
    searchable = [k for k in fields[parts[0]] if f"{parts[0]}.{k}" not in FIXED]
    if key in FIXED:
        raise ValueError(
            f"tune.space.{key}: cannot be searched: {FIXED[key]}; searchable {parts[0]} keys: "
            + ", ".join(searchable)
        )
    if parts[1] not in fields[parts[0]]:
        raise ValueError(
            f"tune.space.{key}: unknown config key; searchable {parts[0]} keys: "
            + ", ".join(searchable)
        )


def _bounds(key: str, kind: str, value: Any) -> tuple[float, float]:
    ok = (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    )
    if not ok or not all(math.isfinite(v) for v in value) or not value[0] < value[1]:
        raise ValueError(f"tune.space.{key}: {kind} needs [low, high] numbers with low < high")
    if kind == "log_uniform" and value[0] <= 0:
        raise ValueError(f"tune.space.{key}: log_uniform needs low > 0")
    if kind == "int" and not all(isinstance(v, int) for v in value):
        raise ValueError(f"tune.space.{key}: int needs integer bounds")
    return value[0], value[1]


def parse_space(space: dict[str, Any], fields: Mapping[str, Collection[str]]) -> list[Param]:
    """Validate ``tune.space`` and return its parameters in declaration order.

    ``fields`` maps each searchable section to its keys (:func:`cryptocast.config.sections.searchable_fields`).

    Raises:
        ValueError: a message naming ``tune.space.<key>`` (the config turns it into ConfigError).
    """
    params = []
    for key, spec in space.items():
        _check_key(key, fields)
        if isinstance(spec, list):
            scalar = all(v is None or isinstance(v, bool | int | float | str) for v in spec)
            if not spec or not scalar:
                raise ValueError(f"tune.space.{key}: a choice list needs scalar values")
            params.append(Param(key, "categorical", choices=tuple(spec)))
        elif isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)) in KINDS:
            kind, value = next(iter(spec.items()))
            low, high = _bounds(key, kind, value)
            params.append(Param(key, kind, low=low, high=high))
        else:
            raise ValueError(
                f"tune.space.{key}: expected a list of choices or one of "
                + ", ".join(f"{{{k}: [low, high]}}" for k in KINDS)
            )
    return params
