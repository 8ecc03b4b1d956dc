"""Loading a user's class from ``package.module:ClassName``."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

from deepal.errors import UnknownNameError


def is_import_spec(name: str) -> bool:
    """Whether ``name`` looks like ``package.module:Attribute``."""
    return ":" in name


def load_object(spec: str) -> Any:
    """Import ``package.module:Attribute`` (dots allowed in the attribute) and return it."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise UnknownNameError(f"{spec!r} is not of the form package.module:ClassName")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise UnknownNameError(
            f"cannot import module {module_name!r} for {spec!r} ({error}); "
            "is it installed or on PYTHONPATH?"
        ) from error
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise UnknownNameError(f"module {module_name!r} has no attribute {attribute!r}")
        obj = getattr(obj, part)
    return obj


def canonical_name(name: str, known: Sequence[str], kind: str) -> str:
    """The entry of ``known`` equal to ``name`` ignoring case, else an error listing them."""
    for candidate in known:
        if candidate.lower() == name.lower():
            return candidate
    raise UnknownNameError(f"unknown {kind} {name!r}: choose one of {', '.join(known)}")
