"""The base of deepal's settings models, and the translation of pydantic's errors into one
clear :class:`ConfigError` line."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from deepal.errors import DeepALError


class ConfigError(DeepALError):
    """A setting is malformed or asks for something impossible.

    Examples
    --------
    >>> class Loop(Settings):
    ...     n_query: int = 10
    >>> try:
    ...     validated(Loop, {"n_query": 0.5})
    ... except ConfigError as error:
    ...     print(error)
    n_query: input should be a valid integer, got 0.5
    """


class Settings(BaseModel):
    """A block of settings: unknown keys refused, no type coercion (``"3"`` is not 3, ``true``
    is not 1), no NaN or infinite float, immutable once checked.

    Examples
    --------
    >>> class Loop(Settings):
    ...     n_query: int = 10
    >>> Loop(n_query=5).n_query
    5
    """

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


S = TypeVar("S", bound=BaseModel)


def validated(model: type[S], raw: Any, where: str = "",
              names: Mapping[str, str] | None = None) -> S:
    """``raw`` checked as a ``model``, or a :class:`ConfigError` naming the first bad key.

    ``where`` prefixes the key's location (e.g. ``"[training]"``, ``"--"``); ``names`` renames
    locations for the reader (e.g. ``{"[loop] n_query": "--n-query"}`` when the settings came
    from command-line options).

    Parameters
    ----------
    model:
        The :class:`Settings` class to check ``raw`` against.
    raw:
        The settings as read: a mapping of keys to values.
    where:
        Prefix of the key's location in messages.
    names:
        Locations renamed for the reader.

    Returns
    -------
    Settings
        ``raw`` as a ``model``.

    Examples
    --------
    >>> class Loop(Settings):
    ...     n_query: int
    >>> validated(Loop, {"n_query": "5"}, "[loop]")
    Traceback (most recent call last):
    ...
    deepal.config.base.ConfigError: [loop] n_query: input should be a valid integer, got '5'
    """
    try:
        return model.model_validate(dict(raw) if isinstance(raw, Mapping) else raw)
    except ValidationError as error:
        raise ConfigError(describe(error, where, names)) from None


def describe(error: ValidationError, where: str = "",
             names: Mapping[str, str] | None = None) -> str:
    """One line for the first error of ``error``: the key, what is wrong, what was given."""
    first = error.errors(include_url=False)[0]
    location = ".".join(str(part) for part in first["loc"])
    message = first["msg"]
    if message.startswith("Value error, "):  # deepal's own message, worded to follow the key
        message = message[len("Value error, "):]
    else:  # pydantic's, a sentence of its own
        message = message[0].lower() + message[1:]
    given = first.get("input")
    key = f"{where} {location}".strip()
    key = (names or {}).get(key, key)
    if first["type"] == "extra_forbidden":
        return f"unknown key {key!r}: check its spelling (see the documentation for the keys)"
    if not location:  # a check of the whole table: its message names the keys
        return f"{key} {message}".strip()
    shown = "" if isinstance(given, (dict, list)) else f", got {given!r}"
    return f"{key}: {message}{shown}" if key else f"{message}{shown}"
