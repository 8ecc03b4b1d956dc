"""The on-disk cache of pretrained features and encoder weights.

One folder per key, ``<cache_dir>/<label>-<key>``, holding ``features.npy`` (float32, read
with ``allow_pickle=False``), ``encoder.pt`` (a ``state_dict`` of tensors, read with
``weights_only=True``) and ``settings.json`` (what was pretrained, how, and its key). The key
is a hash of the pool's inputs, the architecture's name and the settings that decide the
result, so other inputs or settings never read another's entry. Each file is written to a
temporary file and renamed, ``settings.json`` last: an entry is complete once it exists. A
file that is missing, unreadable or does not fit the key is reported by :func:`load_entry`
as absent (with a warning naming it), and the entry is computed again.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepal.data.batches import iter_batches
from deepal.data.handlers import as_tensor
from deepal.data.pool import Data
from deepal.errors import DeepALError, first_line
from deepal.experiments.store import atomic_write_bytes, atomic_write_text

#: Environment variable naming deepal's cache folder.
CACHE_ENV = "DEEPAL_CACHE"

FEATURES, ENCODER, RECORD = "features.npy", "encoder.pt", "settings.json"

#: Bumped when the files' meaning changes, so older entries are not read.
FORMAT = 1


def default_cache_dir() -> Path:
    """``$DEEPAL_CACHE/pretraining``, else ``$XDG_CACHE_HOME/deepal/pretraining``, else
    ``~/.cache/deepal/pretraining``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser() / "pretraining"
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "deepal" / "pretraining"


def checked_cache_dir(cache_dir: str | os.PathLike[str] | None) -> Path:
    """The cache folder (the default for ``None``), or a :class:`DeepALError` when it, or a
    folder above it, is a file."""
    folder = default_cache_dir() if cache_dir is None else Path(cache_dir).expanduser()
    for part in (folder, *folder.parents):
        if part.exists() and not part.is_dir():
            raise DeepALError(f"cache_dir {str(folder)!r} cannot be a folder: {str(part)!r} "
                              "is a file; choose another cache_dir")
    return folder


def inputs_digest(data: Data, sample: int = 64) -> str:
    """SHA-256 of the pool's inputs as stored (shape, type and bytes) and of its first
    ``sample`` inputs as the handler serves them (so a change of normalisation is another
    pool). Labels are not read."""
    x = as_tensor(data.X_train).contiguous()
    digest = hashlib.sha256(f"{tuple(x.shape)} {x.dtype}".encode())
    digest.update(x.numpy().data)
    first = data.get_inputs(np.arange(min(sample, data.n_pool)))
    served = next(iter_batches(first, sample))[0]
    digest.update(served.float().contiguous().numpy().data)
    return digest.hexdigest()


def cache_key(digest: str, net_name: str, settings: dict[str, Any]) -> str:
    """The key of an entry: a hash of the inputs' digest, the architecture and the settings."""
    text = json.dumps({"format": FORMAT, "inputs": digest, "net": net_name,
                       "settings": settings}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def entry_folder(cache_dir: Path, label: str, key: str) -> Path:
    """``<cache_dir>/<label>-<key>``, the label reduced to letters, digits, ``-`` and ``_``."""
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", label)[:40] or "pool"
    return cache_dir / f"{safe}-{key}"


@dataclass(frozen=True)
class Entry:
    """A cache entry as read back: the features, the encoder's weights and the record."""

    features: np.ndarray
    encoder_state: dict[str, torch.Tensor]
    record: dict[str, Any]


def save_entry(folder: Path, features: np.ndarray, encoder_state: dict[str, torch.Tensor],
               record: dict[str, Any]) -> None:
    """Write an entry, each file atomically and the record last."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(features, dtype=np.float32), allow_pickle=False)
    atomic_write_bytes(folder / FEATURES, buffer.getvalue())
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in encoder_state.items()}, buffer)
    atomic_write_bytes(folder / ENCODER, buffer.getvalue())
    atomic_write_text(folder / RECORD, json.dumps(record, indent=2, sort_keys=True) + "\n")


def load_entry(folder: Path, key: str, n_rows: int) -> Entry | None:
    """The entry in ``folder`` if it is complete, readable, made for ``key`` and has
    ``n_rows`` finite feature rows; else ``None``, with a warning when a file exists but
    cannot be used (it is then computed again and replaced)."""
    if not (folder / RECORD).is_file():
        return None
    try:
        return _read(folder, key, n_rows)
    except _Unusable as problem:
        warnings.warn(f"pretraining cache {folder}: {problem}; computing it again",
                      stacklevel=3)
        return None


class _Unusable(Exception):
    """A cache file that cannot be used, and why."""


def _read(folder: Path, key: str, n_rows: int) -> Entry:
    try:
        record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise _Unusable(f"{RECORD} is unreadable ({first_line(error)})") from None
    if not isinstance(record, dict) or record.get("key") != key:
        raise _Unusable(f"{RECORD} was not written for this pool and these settings")
    try:
        features = np.load(folder / FEATURES, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise _Unusable(f"{FEATURES} is unreadable ({first_line(error)})") from None
    if (features.dtype != np.float32 or features.ndim != 2 or len(features) != n_rows
            or not np.isfinite(features).all()):
        raise _Unusable(f"{FEATURES} holds {features.dtype} {features.shape}, not "
                        f"{n_rows} finite float32 rows")
    try:
        state = torch.load(folder / ENCODER, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, ValueError) as error:
        raise _Unusable(f"{ENCODER} is unreadable ({first_line(error)})") from None
    if not (isinstance(state, dict)
            and all(isinstance(v, torch.Tensor) for v in state.values())):
        raise _Unusable(f"{ENCODER} is not a state_dict of tensors")
    return Entry(features, state, record)
