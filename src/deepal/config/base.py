"""The base of deepal's settings models, and the translation of pydantic's errors into one
clear :class:`ConfigError` line."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from deepal.errors import DeepALError


class ConfigError(DeepALError):
    """A setting is malformed or asks for something impossible."""


class Settings(BaseModel):
    """A block of settings: unknown keys refused, no type coercion (``"3"`` is not 3, ``true``
    is not 1), no NaN or infinite float, immutable once checked."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


S = TypeVar("S", bound=BaseModel)


def validated(model: type[S], raw: Mapping[str, Any], where: str = "") -> S:
    """``raw`` checked as a ``model``, or a :class:`ConfigError` naming the first bad key.

    ``where`` prefixes the key's location (e.g. ``"[training]"``, ``"--"``)."""
    try:
        return model.model_validate(dict(raw))
    except ValidationError as error:
        raise ConfigError(describe(error, where)) from None


def describe(error: ValidationError, where: str = "") -> str:
    """One line for the first error of ``error``: the key, what is wrong, what was given."""
    first = error.errors(include_url=False)[0]
    location = ".".join(str(part) for part in first["loc"])
    message = first["msg"]
    if message.startswith("Value error, "):  # a validator's own message is already a sentence
        message = message[len("Value error, "):]
    given = first.get("input")
    key = f"{where} {location}".strip() if location else where.strip()
    if first["type"] == "extra_forbidden":
        return f"unknown key {key!r}: check its spelling (see the documentation for the keys)"
    shown = "" if isinstance(given, (dict, list)) else f", got {given!r}"
    return f"{key}: {message[0].lower()}{message[1:]}{shown}" if key else f"{message}{shown}"
