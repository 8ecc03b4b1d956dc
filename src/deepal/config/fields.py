"""Field types shared by deepal's settings models: counts, finite bounded numbers, names and
device names, each refusing a bad value with a message that says what is expected."""

from __future__ import annotations

import math
from typing import Annotated, Any

import torch
from pydantic import AfterValidator, BeforeValidator, Field

#: The largest seed: numpy's legacy generator takes seeds below 2**32.
MAX_SEED = 2**32 - 1


def _at_least(minimum: int) -> AfterValidator:
    def check(value: int) -> int:
        if value < minimum:
            raise ValueError(f"must be an integer >= {minimum}")
        return value

    return AfterValidator(check)


def _seed(value: int) -> int:
    if not 0 <= value <= MAX_SEED:
        raise ValueError(f"must be an integer from 0 to {MAX_SEED} (a seed numpy accepts)")
    return value


def _finite_above(minimum: float, inclusive: bool) -> AfterValidator:
    relation = ">=" if inclusive else ">"

    def check(value: float) -> float:
        if not math.isfinite(value) or value < minimum or (value == minimum and not inclusive):
            raise ValueError(f"must be a finite number {relation} {minimum:g}")
        return value

    return AfterValidator(check)


def _fraction(value: float) -> float:
    if not 0.0 <= value < 1.0:
        raise ValueError("must be a number in [0, 1)")
    return value


def _list_to_tuple(value: Any) -> Any:
    # TOML and JSON give lists; strict validation wants the declared tuple.
    if isinstance(value, str):
        raise ValueError(f"must be a list, e.g. [{value!r}], not one string")
    return tuple(value) if isinstance(value, list) else value


def _one_to_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _unique(values: tuple[Any, ...]) -> tuple[Any, ...]:
    if not values:
        raise ValueError("must not be empty")
    twice = sorted({str(v) for v in values if values.count(v) > 1})
    if twice:
        raise ValueError(f"lists {', '.join(twice)} more than once: keep each once")
    return values


def _device(value: str) -> str:
    try:
        torch.device(value)
    except (RuntimeError, ValueError):
        raise ValueError("unknown device: use cpu, cuda, cuda:N or mps") from None
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must be a non-empty string")
    return value


#: An integer >= 0 (a count that may be zero).
NonNegativeInt = Annotated[int, _at_least(0)]
#: An integer >= 1.
PositiveInt = Annotated[int, _at_least(1)]
#: A finite number > 0 (a learning rate).
PositiveFloat = Annotated[float, Field(allow_inf_nan=True), _finite_above(0.0, inclusive=False)]
#: A finite number >= 0 (a weight decay).
NonNegativeFloat = Annotated[float, Field(allow_inf_nan=True), _finite_above(0.0, inclusive=True)]
#: A number in [0, 1).
Fraction = Annotated[float, AfterValidator(_fraction)]
#: A non-empty string.
Name = Annotated[str, AfterValidator(_not_blank)]
#: A non-empty list of distinct names.
NameList = Annotated[tuple[Name, ...], BeforeValidator(_list_to_tuple), AfterValidator(_unique)]
#: The same, where one name alone is accepted for a list of one.
Names = Annotated[NameList, BeforeValidator(_one_to_list)]
#: One random seed, from 0 to :data:`MAX_SEED`.
Seed = Annotated[int, AfterValidator(_seed)]
#: A non-empty list of distinct seeds.
Seeds = Annotated[tuple[Seed, ...], BeforeValidator(_list_to_tuple),
                  AfterValidator(_unique)]
#: A torch device name: ``cpu``, ``cuda``, ``cuda:1``, ``mps``...
Device = Annotated[str, AfterValidator(_device)]


def one_of(choices: tuple[str, ...], what: str) -> AfterValidator:
    """A validator accepting only ``choices``; the error reads ``unknown WHAT: choose one of
    ...``."""

    def check(value: str) -> str:
        if value not in choices:
            raise ValueError(f"unknown {what}: choose one of {', '.join(choices)}")
        return value

    return AfterValidator(check)
