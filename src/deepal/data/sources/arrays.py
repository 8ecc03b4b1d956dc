"""Arrays in memory or on disk (``.npy`` / ``.npz``) and any ``torch.utils.data.Dataset``."""

from __future__ import annotations

import math
import os
import tokenize
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from torch.utils.data import Dataset

from deepal.config.arguments import optional_integer
from deepal.data.handlers import image_handler
from deepal.data.pool import Data, Handler
from deepal.data.sources import existing_file
from deepal.data.sources.labels import encode_labels
from deepal.errors import CorruptDataError, DeepALError

#: Deflate expands at most about 1032-fold: an archive member declaring more bytes per
#: compressed byte cannot be honest.
_MAX_RATIO = 1100

_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


def from_arrays(
    X: Any,
    y: Any | None = None,
    X_test: Any | None = None,
    y_test: Any | None = None,
    class_names: Sequence[str] | None = None,
    n_classes: int | None = None,
) -> Data:
    """A :class:`Data` pool from arrays (numpy arrays, tensors or nested lists).

    Parameters
    ----------
    X:
        The pool's inputs, first axis = examples. ``uint8`` arrays of shape ``(N, C, H, W)``
        are images, normalised per batch to [-1, 1]; anything else is used as it is.
    y:
        Labels (class indices or names; ``-1`` / ``None`` / ``""`` = not labeled), or ``None``.
    X_test, y_test:
        An optional labeled test set.
    class_names, n_classes:
        The classes; one of them is needed when no label is known.

    Returns
    -------
    Data
        The pool, with the test set when given.

    Examples
    --------
    ``data = from_arrays(features, labels)``
    """
    n_classes = optional_integer("n_classes", n_classes, minimum=2)
    X = _as_array(X, "X")
    Y, classes = encode_labels(None if y is None else _as_list(y), len(X), class_names)
    Xt = Yt = None
    if X_test is not None:
        if y_test is None:
            raise DeepALError("X_test needs y_test: a test set is labeled")
        Xt = _as_array(X_test, "X_test")
        Yt, classes = encode_labels(_as_list(y_test), len(Xt), classes)
    if n_classes is None and classes is None and (Y < 0).all():
        raise DeepALError("no labels are known: pass class_names or n_classes")
    return Data(X, Y, Xt, Yt, handler=_default_handler(X), n_classes=n_classes,
                class_names=classes)


def from_numpy_file(
    path: str | os.PathLike[str],
    class_names: Sequence[str] | None = None,
    n_classes: int | None = None,
) -> Data:
    """A :class:`Data` pool from a ``.npy`` file (inputs only) or a ``.npz`` archive.

    A ``.npz`` holds ``X`` and optionally ``y``, ``X_test`` and ``y_test`` (as written by
    ``np.savez("pool.npz", X=X, y=y)``). Arrays of Python objects are refused (no pickle).

    Parameters
    ----------
    path:
        A ``.npy`` or ``.npz`` file.
    class_names, n_classes:
        The classes; one of them is needed when no label is known.

    Returns
    -------
    Data
        The pool, with the test set when the archive holds one.

    Examples
    --------
    >>> import os
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "pool.npz")
    >>> np.savez(path, X=np.zeros((5, 3), dtype="float32"))
    >>> from_numpy_file(path, n_classes=2).n_pool
    5
    """
    file = existing_file(path, "numpy file")
    arrays = read_numpy_file(file)
    if "X" not in arrays:
        raise DeepALError(f"{file} has no array named 'X' (it has {sorted(arrays)}): "
                          "save it with np.savez(path, X=X, y=y)")
    return from_arrays(arrays["X"], arrays.get("y"), arrays.get("X_test"), arrays.get("y_test"),
                       class_names=class_names, n_classes=n_classes)


def read_numpy_file(file: Path) -> dict[str, np.ndarray]:
    """The arrays of a ``.npz`` archive by name, or a ``.npy`` file's array as ``"X"``.

    Each array's header is checked against the bytes that follow it before the array is
    allocated, so a damaged header cannot ask for gigabytes.

    Parameters
    ----------
    file:
        A ``.npy`` file or a ``.npz`` archive (recognised by their content, not their name).

    Returns
    -------
    dict[str, np.ndarray]
        The arrays.

    Raises
    ------
    CorruptDataError
        The file is neither, a header is damaged or disagrees with the data's size, or an
        array holds Python objects (which would need pickle).

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "pool.npz"
    >>> np.savez(path, X=np.zeros((2, 3)), y=np.array([0, 1]))
    >>> {name: a.shape for name, a in read_numpy_file(path).items()}
    {'X': (2, 3), 'y': (2,)}
    """
    try:
        if zipfile.is_zipfile(file):
            return _read_npz(file)
        with file.open("rb") as stream:
            return {"X": _checked_array(stream, file.stat().st_size, str(file))}
    except CorruptDataError:
        raise
    # numpy reports a damaged header as ValueError; zipfile and zlib have their own errors.
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise CorruptDataError(f"cannot read {file} as a .npy/.npz file: {error}") from error


def _read_npz(file: Path) -> dict[str, np.ndarray]:
    arrays = {}
    with zipfile.ZipFile(file) as archive:
        for info in archive.infolist():
            where = f"{file}, member {info.filename}"
            if info.file_size > _MAX_RATIO * info.compress_size + 4096:
                raise CorruptDataError(f"{where} declares {info.file_size} bytes, more than "
                                       f"its {info.compress_size} compressed bytes can hold")
            with archive.open(info) as member:
                arrays[info.filename.removesuffix(".npy")] = _checked_array(
                    member, info.file_size, where)
    return arrays


def _checked_array(stream: IO[bytes], size: int, where: str) -> np.ndarray:
    """The array of a ``.npy`` stream of ``size`` bytes, its header checked first."""
    version = np.lib.format.read_magic(stream)
    if version not in _HEADER_READERS:
        raise CorruptDataError(f"{where}: .npy format version {version} is not supported")
    try:
        shape, _, dtype = _HEADER_READERS[version](stream)
    # numpy reports most damaged headers as ValueError, but lets its parser's errors through.
    except (SyntaxError, tokenize.TokenError) as error:
        raise CorruptDataError(f"{where}: damaged .npy header ({error})") from error
    if dtype.hasobject:
        raise CorruptDataError(f"{where} holds Python objects (dtype {dtype}), which deepal "
                               "does not unpickle: save numeric arrays")
    declared = math.prod(shape) * dtype.itemsize
    present = size - stream.tell()
    if declared != present:
        raise CorruptDataError(f"{where}: the header declares shape {shape} of {dtype} "
                               f"({declared} bytes) but {present} bytes follow it")
    stream.seek(0)
    return np.lib.format.read_array(stream, allow_pickle=False)  # type: ignore[no-any-return]


def from_torch_dataset(
    dataset: Dataset,
    test_dataset: Dataset | None = None,
    class_names: Sequence[str] | None = None,
    n_classes: int | None = None,
) -> Data:
    """A :class:`Data` pool from any map-style ``torch.utils.data.Dataset``.

    Every item is read once and the inputs stacked into one tensor, so training never goes
    through the dataset again. Items may be ``x`` alone (no labels) or ``(x, y, ...)``;
    ``x`` may be a tensor, a numpy array, a number or a PIL image (``H x W x C`` images
    become ``uint8`` ``(C, H, W)``). A dataset's ``classes`` attribute gives the class names.

    Parameters
    ----------
    dataset:
        The pool's dataset.
    test_dataset:
        An optional labeled test dataset.
    class_names, n_classes:
        The classes; one of them is needed when no label is known.

    Returns
    -------
    Data
        The pool, with the test set when given.

    Examples
    --------
    >>> from torch.utils.data import TensorDataset
    >>> data = from_torch_dataset(TensorDataset(torch.randn(20, 3), torch.arange(20) % 2))
    >>> data.n_pool, data.n_classes
    (20, 2)
    """
    X, Y = _read_dataset(dataset, "dataset")
    if class_names is None and getattr(dataset, "classes", None) is not None:
        class_names = [str(c) for c in dataset.classes]  # type: ignore[attr-defined]
    X_test = Y_test = None
    if test_dataset is not None:
        X_test, Y_test = _read_dataset(test_dataset, "test_dataset")
        if Y_test is None:
            raise DeepALError("test_dataset has no labels: its items must be (x, y)")
    return from_arrays(X, Y, X_test, Y_test, class_names=class_names, n_classes=n_classes)


def _read_dataset(dataset: Dataset, name: str) -> tuple[torch.Tensor, list[Any] | None]:
    try:
        n = len(dataset)  # type: ignore[arg-type]
    except TypeError:
        raise DeepALError(f"{name} has no len(): deepal needs a map-style Dataset") from None
    if n == 0:
        raise DeepALError(f"{name} is empty")
    xs: list[torch.Tensor] = []
    ys: list[Any] = []
    labeled = None
    for i in range(n):
        item = dataset[i]
        has_label = isinstance(item, (tuple, list)) and len(item) >= 2
        if labeled is None:
            labeled = has_label
        elif labeled != has_label:
            raise DeepALError(f"{name}: item {i} differs in form from item 0 (x vs. (x, y))")
        x = item[0] if has_label else item
        xs.append(_input_tensor(x))
        if has_label:
            y = item[1]
            ys.append(y.item() if isinstance(y, torch.Tensor) else y)
        if xs[-1].shape != xs[0].shape:
            raise DeepALError(f"{name}: item {i} has shape {tuple(xs[-1].shape)}, item 0 "
                              f"{tuple(xs[0].shape)}: resize inputs to one shape")
    return torch.stack(xs), (ys if labeled else None)


def _input_tensor(x: Any) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu()
    if hasattr(x, "mode") and hasattr(x, "size") and not isinstance(x, np.ndarray):
        arr = np.asarray(x)  # a PIL image: H x W (x C), uint8
        return torch.from_numpy(arr.reshape(*arr.shape[:2], -1).transpose(2, 0, 1).copy())
    return torch.as_tensor(np.asarray(x))


def _as_array(X: Any, name: str) -> Any:
    if isinstance(X, torch.Tensor):
        return X.detach().cpu()
    arr = np.asarray(X)
    if arr.dtype == object or arr.ndim == 0:
        raise DeepALError(f"{name} must be a numeric array with one row per example")
    if len(arr) == 0:
        raise DeepALError(f"{name} is empty")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise DeepALError(f"{name} must be numeric, got dtype {arr.dtype}")
    return arr


def _as_list(y: Any) -> list[Any]:
    if isinstance(y, torch.Tensor):
        return y.reshape(-1).tolist()
    return list(np.asarray(y, dtype=object).reshape(-1))


def _default_handler(X: Any) -> Handler | None:
    """Images (``uint8``, 4-d) are normalised to [-1, 1]; other inputs are used as given."""
    if X.dtype in (np.uint8, torch.uint8) and X.ndim == 4:
        channels = X.shape[1]
        return image_handler((0.5,) * channels, (0.5,) * channels)
    return None
