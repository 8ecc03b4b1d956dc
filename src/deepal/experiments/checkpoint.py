"""A run's checkpoint: its state after a round, as tensors and plain containers.

A checkpoint is ``{"format": 2, "settings": hash, "round": int, "labeled": bool tensor,
"rng": global random states, "strategy": strategy.state_dict(), "rounds": [row dicts]}``,
written with :func:`torch.save` and read only with ``torch.load(..., weights_only=True)``: a
file in an output folder is data, never code, whoever put it there.
"""

from __future__ import annotations

import io
import pickle
import random
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from deepal.errors import DeepALError, first_line

#: The format written now. Format 1 pickled the whole strategy.
FORMAT = 2


class CheckpointError(DeepALError):
    """A run's checkpoint cannot be read: an older format, another program's file, or a
    damaged one. Nothing of it is run."""


def encode(checkpoint: dict[str, Any]) -> bytes:
    """``checkpoint`` (without its format) as the bytes of a format-2 checkpoint file."""
    buffer = io.BytesIO()
    torch.save({**checkpoint, "format": FORMAT}, buffer)
    return buffer.getvalue()


def read(path: Path) -> dict[str, Any]:
    """The checkpoint at ``path``, loaded with ``weights_only=True``.

    Raises
    ------
    CheckpointError
        If the file is not a format-2 checkpoint; the message names the file and what to do.
    """
    fresh = f"delete {path.parent} to run that run again from the start"
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as error:
        refused = _refused_globals(path)
        if refused is not None and all(name.startswith("numpy") for name in refused):
            raise CheckpointError(
                f"{path} was written by an earlier deepal in checkpoint format 1 (a pickled "
                f"strategy), which this deepal does not load: {fresh}, or resume it with the "
                "deepal that wrote it") from None
        reason = (f"it names code to run: {', '.join(refused[:3])}" if refused
                  else f"{type(error).__name__}: {first_line(error)}")
        raise CheckpointError(f"{path} is not a checkpoint deepal can load safely ({reason}); "
                              f"nothing of it was run: {fresh}") from None
    found = checkpoint.get("format") if isinstance(checkpoint, dict) else None
    if found != FORMAT:
        raise CheckpointError(f"{path} has checkpoint format {found!r}, and this deepal reads "
                              f"format {FORMAT}: {fresh}")
    return checkpoint  # type: ignore[no-any-return]


def _refused_globals(path: Path) -> list[str] | None:
    """The functions and classes the file would call, read without running any of them;
    ``None`` when it is not even a torch archive."""
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # noqa: BLE001 - any failure means: not an archive we can inspect
        return None


def capture_rng() -> dict[str, Any]:
    """The global random states the next round draws from: Python's, numpy's and torch's
    (CPU and CUDA), as tensors and plain containers. The strategy's own generator is in
    its state."""
    version, words, gauss = random.getstate()
    name, keys, position, has_gauss, cached = cast(tuple[Any, ...],
                                                   np.random.get_state(legacy=True))
    state: dict[str, Any] = {
        "python": [version, list(words), gauss],
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(position), int(has_gauss),
                  float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Put back the states :func:`capture_rng` took."""
    version, words, gauss = state["python"]
    random.setstate((version, tuple(words), gauss))
    name, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
