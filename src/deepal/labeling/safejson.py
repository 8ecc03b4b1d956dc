"""JSON from outside (a request body, a label file) parsed as plain data within limits: strict
UTF-8, no ``NaN``/``Infinity``, no repeated key in an object, a bounded nesting depth."""

from __future__ import annotations

import json
from typing import Any

from deepal.errors import DeepALError


class JSONInputError(DeepALError):
    """JSON that is malformed, or legal JSON outside what deepal reads."""


def _no_constant(name: str) -> Any:
    raise JSONInputError(f"{name} is not a number deepal reads")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for key, item in pairs:
        if key in value:
            raise JSONInputError(f"the key {key!r} is repeated in one object")
        value[key] = item
    return value


def depth(value: Any) -> int:
    """How deeply lists and objects nest in ``value`` (0 for a scalar).

    Examples
    --------
    >>> depth(3), depth([]), depth({"a": [1, {"b": 2}]})
    (0, 1, 3)
    """
    deepest, level = 0, [(value, 0)]
    while level:  # iterative: a deep value must not exhaust the interpreter's stack
        node, above = level.pop()
        if isinstance(node, (list, dict)):
            deepest = max(deepest, above + 1)
            level.extend((child, above + 1) for child in
                         (node.values() if isinstance(node, dict) else node))
    return deepest


def parse_json(data: bytes | str, max_depth: int) -> Any:
    """``data`` parsed as JSON, or a :class:`JSONInputError` saying what is wrong.

    Parameters
    ----------
    data:
        UTF-8 bytes (a byte order mark is allowed) or text.
    max_depth:
        The deepest nesting of lists and objects accepted.

    Examples
    --------
    >>> parse_json(b'{"item": 3}', max_depth=1)
    {'item': 3}
    >>> parse_json(b'[[1]]', max_depth=1)
    Traceback (most recent call last):
    ...
    deepal.labeling.safejson.JSONInputError: JSON nested deeper than 1 levels
    """
    try:
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
        value = json.loads(text, parse_constant=_no_constant, object_pairs_hook=_unique_keys)
    except UnicodeDecodeError as error:
        raise JSONInputError(f"not UTF-8 text ({error.reason} at byte {error.start})") \
            from None
    except json.JSONDecodeError as error:
        raise JSONInputError(f"not valid JSON: {error}") from None
    except JSONInputError:
        raise
    except ValueError as error:  # an integer of more digits than Python converts
        raise JSONInputError(f"a value deepal does not read: {error}") from None
    except RecursionError:
        raise JSONInputError(f"JSON nested deeper than {max_depth} levels") from None
    if depth(value) > max_depth:
        raise JSONInputError(f"JSON nested deeper than {max_depth} levels")
    return value
