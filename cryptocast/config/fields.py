"""What every config section shares: the base model (unknown keys refused, no booleans as
numbers, comma lists from ``--set``) and the value types with their bounds (ISO dates, seeds,
float32 rates, model sizes), so each bound is written once and named by the dotted key.
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from cryptocast.config.dates import iso_problem
from cryptocast.errors import ConfigError


def _iso_date(value: str | None) -> str | None:
    """A config date stays the string the user wrote (so config hashes do not move) once it is
    known to be ISO; anything else (``01/02/2023``, ``2023-13-01``) is refused, never guessed."""
    if value is not None and (problem := iso_problem(value)):
        raise ValueError(problem)
    return value


IsoDate = Annotated[str | None, AfterValidator(_iso_date)]

#: numpy's legacy seeding (``np.random.seed``, Optuna's TPE sampler) takes 0 .. 2**32 - 1 and
#: torch a subset of 64-bit integers: a seed is refused at load, not in the middle of a fit
Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]
#: torch trains in float32: a rate past its largest value overflows inside the optimiser step
FLOAT32_MAX = 3.4028234663852886e38


def _fits_float32(value: float) -> float:
    if abs(value) > FLOAT32_MAX:
        raise ValueError(
            f"{value:g} does not fit in float32, the precision torch trains in (max 3.4e38)"
        )
    return value


TorchFloat = Annotated[float, AfterValidator(_fits_float32)]
#: model sizes: far past what a few thousand candles can train, and small enough that one
#: model's weights fit in memory (d_model=1000000 asked for terabytes before it failed)
MAX_WIDTH, MAX_FEEDFORWARD, MAX_HEADS, MAX_LAYERS = 4096, 16384, 64, 32


def _allows_bool(annotation: Any) -> bool:
    if annotation is bool or annotation is Any:
        return True
    return any(_allows_bool(a) for a in typing.get_args(annotation))


def _scalar_list(annotation: Any) -> bool:
    """Whether ``annotation`` takes a list of plain values (``list[str]``, ``list[float] | None``)."""
    origin = typing.get_origin(annotation)
    if origin is list:
        return all(a in (str, int, float) for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):  # ``list[float] | None``, not ``dict[.., list]``
        return any(_scalar_list(a) for a in typing.get_args(annotation))
    return False


class _Section(BaseModel):
    # no inf/nan in any float; a YAML true/false is never a number (pydantic would read it as 1/0)
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if isinstance(value, bool) and field is not None and not _allows_bool(field.annotation):
            raise ValueError(f"expected a number, not {str(value).lower()}")
        if isinstance(value, str) and field is not None and _scalar_list(field.annotation):
            # ``--set backtest.models=lstm,persistence``: the comma form the CLI flags take
            return [item.strip() for item in value.split(",") if item.strip()]
        return value


def _name_check(check: Any, value: Any) -> Any:
    """Run a ``names``/``timeframes`` check inside a pydantic validator (ValueError: dotted key)."""
    try:
        check(value)
    except ConfigError as err:
        raise ValueError(str(err)) from None
    return value
