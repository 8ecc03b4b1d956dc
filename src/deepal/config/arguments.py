"""Checks of the keyword arguments that strategies and posterior estimates take in Python.

A strategy's options come from a user's code or from ``[strategy_options.NAME]`` in a config;
either way they are checked here, by one function per kind of value, so every option gives
the same message for the same mistake: ``NAME must be an integer >= 1, got 0``.
"""

from __future__ import annotations

import math

import numpy as np

from deepal.config.base import ConfigError


def integer(name: str, value: object, minimum: int = 0) -> int:
    """``value`` as an ``int``: an integer (Python's or numpy's, never a bool) >= ``minimum``.

    Raises
    ------
    ConfigError
        Naming the argument, what it must be and what was given.

    Examples
    --------
    >>> integer("n_drop", np.int64(10), minimum=2)
    10
    >>> integer("n_drop", 1.5, minimum=2)
    Traceback (most recent call last):
    ...
    deepal.config.base.ConfigError: n_drop must be an integer >= 2, got 1.5
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def optional_integer(name: str, value: object, minimum: int = 0) -> int | None:
    """:func:`integer`, with ``None`` (the option left out) kept as it is.

    Examples
    --------
    >>> optional_integer("n_clusters", None, minimum=1) is None
    True
    """
    if value is None:
        return None
    try:
        return integer(name, value, minimum)
    except ConfigError:
        raise ConfigError(f"{name} must be an integer >= {minimum} or None, got {value!r}"
                          ) from None


def number(name: str, value: object, above: float | None = None, at_least: float | None = None,
           infinite: bool = False, hint: str = "") -> float:
    """``value`` as a ``float``: a real number (not a bool), ``> above`` and ``>= at_least``
    where given, finite unless ``infinite``.

    Parameters
    ----------
    hint:
        Added to the message in parentheses (e.g. what an infinite value means).

    Examples
    --------
    >>> number("beta", float("inf"), above=0, infinite=True)
    inf
    >>> number("lamb", 0, above=0)
    Traceback (most recent call last):
    ...
    deepal.config.base.ConfigError: lamb must be a finite number > 0, got 0
    """
    real = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value,
                                                                                       bool)
    fits = real and not math.isnan(value) and (infinite or math.isfinite(value))  # type: ignore[arg-type]
    fits = fits and (above is None or value > above)  # type: ignore[operator]
    fits = fits and (at_least is None or value >= at_least)  # type: ignore[operator]
    if not fits:
        wanted = ["a number" if infinite else "a finite number"]
        wanted += [f"> {above:g}"] if above is not None else []
        wanted += [f">= {at_least:g}"] if at_least is not None else []
        note = f" ({hint})" if hint else ""
        raise ConfigError(f"{name} must be {' '.join(wanted)}{note}, got {value!r}")
    return float(value)  # type: ignore[arg-type]
