"""``tune.space`` at trial time: Optuna suggestions for the declared parameters, and the config
mapping a trial runs with. The space's grammar and its load-time check are
:mod:`cryptocast.config.space`.
"""

from __future__ import annotations

from typing import Any

from cryptocast.config.space import Param


def suggest(trial: Any, params: list[Param]) -> dict[str, Any]:
    """Ask an Optuna trial for a value of every parameter -> ``{dotted key: value}``."""
    out: dict[str, Any] = {}
    for p in params:
        if p.kind == "categorical":
            out[p.key] = trial.suggest_categorical(p.key, list(p.choices))
        elif p.kind == "int":
            out[p.key] = trial.suggest_int(p.key, int(p.low), int(p.high))
        else:
            out[p.key] = trial.suggest_float(p.key, p.low, p.high, log=p.kind == "log_uniform")
    return out


def apply_params(raw: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """A copy of a config mapping with ``{dotted key: value}`` set."""
    import copy

    out = copy.deepcopy(raw)
    for key, value in params.items():
        section, name = key.split(".")
        out.setdefault(section, {})[name] = value
    return out
