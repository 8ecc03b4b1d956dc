"""What a strategy learned, as plain data: the helpers behind every ``state_dict()``.

A state is a dict holding only torch tensors, ``str`` / ``int`` / ``float`` / ``bool`` /
``None`` and lists, tuples and dicts of them, so that ``torch.save(state)`` and
``torch.load(file, weights_only=True)`` round-trip it: a saved state is data, never code.
Numpy arrays become tensors on the way in and arrays again on the way out; a numpy
:class:`~numpy.random.Generator` is saved as its bit generator's state (a dict of ints).

Module weights are the module's own ``state_dict()`` (tensors that share its parameters'
storage, as PyTorch's do: save them before training the module further), and are loaded into
a module rebuilt by the caller, on the caller's device, so a state saved on a GPU loads on a
machine without one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, TypeVar

import numpy as np
import torch
from torch import nn

from deepal.errors import DeepALError
from deepal.placement import placed

#: The leaf types a state may hold besides tensors.
PLAIN = (str, int, float, bool, type(None))

ModuleT = TypeVar("ModuleT", bound=nn.Module)


class StateError(DeepALError):
    """A saved state that does not fit the object it is loaded into (another class, missing
    or extra entries, weights of another shape), or a value a state cannot hold."""


class Stateful(Protocol):
    """Anything whose learned state is saved and restored as plain data."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


def to_state(value: Any, where: str = "state") -> Any:
    """``value`` as state data: numpy arrays and numpy scalars become tensors and Python
    numbers, containers are converted item by item.

    Parameters
    ----------
    value:
        Tensors, numpy arrays, numpy or Python scalars, ``str``, ``None`` and
        lists / tuples / dicts (with ``str`` keys) of them.
    where:
        The value's name, for the error message.

    Returns
    -------
    Any
        The same structure, holding only tensors and plain Python values (arrays are
        copied, so the state does not change with them).

    Raises
    ------
    StateError
        If ``value`` holds anything else (an object, a function, a module...).

    Examples
    --------
    >>> to_state({"picked": np.array([3, 1]), "reward": np.float64(0.5)})
    {'picked': tensor([3, 1]), 'reward': 0.5}
    """
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise StateError(f"{where} is an array of Python objects, which a state cannot hold")
        return torch.from_numpy(np.array(value, copy=True))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, PLAIN):
        return value
    if isinstance(value, (list, tuple)):
        items = [to_state(item, f"{where}[{i}]") for i, item in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        return {_key(key, where): to_state(item, f"{where}[{key!r}]")
                for key, item in value.items()}
    raise StateError(
        f"{where} is a {type(value).__name__}, which a state cannot hold: only tensors, "
        "numpy arrays, numbers, strings, None and lists, tuples and dicts of them"
    )


def from_state(value: Any) -> Any:
    """The inverse of :func:`to_state`: tensors become numpy arrays again, containers are
    converted item by item.

    Examples
    --------
    >>> from_state({"picked": torch.tensor([3, 1])})
    {'picked': array([3, 1])}
    """
    if isinstance(value, torch.Tensor):
        return value.cpu().numpy()
    if isinstance(value, (list, tuple)):
        items = [from_state(item) for item in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        return {key: from_state(item) for key, item in value.items()}
    return value


def generator_state(rng: np.random.Generator) -> dict[str, Any]:
    """The state of a numpy generator's bit generator (plain ints and strings).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> saved = generator_state(rng)
    >>> first = rng.random()
    >>> set_generator_state(rng, saved)
    >>> rng.random() == first
    True
    """
    return dict(rng.bit_generator.state)


def set_generator_state(rng: np.random.Generator, state: Mapping[str, Any]) -> None:
    """Put ``rng`` back in a state saved by :func:`generator_state`.

    Raises
    ------
    StateError
        If ``state`` is not the state of ``rng``'s kind of bit generator.
    """
    try:
        rng.bit_generator.state = dict(state)
    except (TypeError, ValueError, KeyError) as error:
        raise StateError(
            f"the saved random state does not fit a {type(rng.bit_generator).__name__} "
            f"generator: {error}"
        ) from error


def module_state(module: nn.Module | None) -> dict[str, torch.Tensor] | None:
    """``module``'s weights and buffers (its ``state_dict()``), or ``None`` for no module."""
    return None if module is None else dict(module.state_dict())


def load_module(
    build: Callable[[], ModuleT],
    state: Mapping[str, torch.Tensor] | None,
    device: torch.device | str,
    where: str = "module",
) -> ModuleT | None:
    """A module built by ``build`` holding the weights ``state``, on ``device``, in eval mode;
    ``None`` when ``state`` is ``None``.

    The module is built with torch's global generator forked, so loading draws nothing from
    the random streams a run continues with.

    Raises
    ------
    StateError
        If the weights do not fit the module (other layer names or shapes).
    """
    if state is None:
        return None
    with torch.random.fork_rng(devices=[]):
        module = build()
    try:
        module.load_state_dict(dict(state))
    except RuntimeError as error:
        raise StateError(
            f"the saved {where} weights do not fit {type(module).__name__} as built with these "
            f"options: {error}"
        ) from error
    return placed(module, device).eval()


def check_keys(state: Mapping[str, Any], expected: Iterable[str], owner: str) -> None:
    """Raise a :class:`StateError` naming the missing and the unexpected entries of ``state``
    unless its keys are exactly ``expected``."""
    if not isinstance(state, Mapping):
        raise StateError(f"the state of {owner} must be a dict, got {type(state).__name__}")
    wanted = list(expected)
    missing = [key for key in wanted if key not in state]
    extra = [key for key in state if key not in wanted]
    if missing or extra:
        raise StateError(
            f"the state does not fit {owner}: missing {missing or 'nothing'}, unexpected "
            f"{extra or 'nothing'}; load a state saved by the same class with the same options"
        )


def check_kind(state: Mapping[str, Any], key: str, expected: str, owner: str) -> None:
    """Raise a :class:`StateError` unless ``state[key]`` (the saver's kind) is ``expected``."""
    saved = state.get(key) if isinstance(state, Mapping) else None
    if saved != expected:
        raise StateError(
            f"a state saved by {saved!r} cannot be loaded into {owner} ({expected!r}): "
            f"build a {saved} with the same options to load it"
        )


def _key(key: Any, where: str) -> str:
    if not isinstance(key, str):
        raise StateError(f"{where} has the key {key!r}: a state's dict keys are strings")
    return key
