"""The whole-number arguments of the data readers (``n_classes``, ``n_pool``), checked by the
typed settings layer, so ``2.5``, ``"3"`` or ``True`` is refused instead of truncated."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from deepal.config.base import Settings, validated


class DataCounts(Settings):
    """Counts a data reader takes; ``None`` means "from the data".

    Parameters
    ----------
    n_classes:
        The number of classes, at least 2.
    n_pool:
        How many training examples to keep, at least 1.
    """

    n_classes: int | None = Field(default=None, ge=2)
    n_pool: int | None = Field(default=None, ge=1)


def checked_count(name: str, value: Any) -> int | None:
    """``value`` checked as the :class:`DataCounts` field ``name``.

    Parameters
    ----------
    name:
        ``"n_classes"`` or ``"n_pool"``.
    value:
        What the caller passed; numpy integers count as integers.

    Returns
    -------
    int or None
        The count.

    Raises
    ------
    ConfigError
        ``value`` is not a whole number in the field's range (one line naming the argument).

    Examples
    --------
    >>> checked_count("n_classes", np.int64(3))
    3
    >>> checked_count("n_pool", 2.5)
    Traceback (most recent call last):
    ...
    deepal.config.base.ConfigError: n_pool: input should be a valid integer, got 2.5
    """
    if isinstance(value, np.integer):
        value = int(value)
    return getattr(validated(DataCounts, {name: value}), name)  # type: ignore[no-any-return]
