"""Data set sources: readers of the original distribution files.

Each loader returns :class:`Splits`, plain tensors; :func:`deepal.data.registry.get_dataset`
turns them into a :class:`~deepal.data.pool.Data` pool with DeepAL's normalisation.

* :func:`~deepal.data.sources.mnist.load_mnist`,
  :func:`~deepal.data.sources.mnist.load_fashion_mnist`: gzip-compressed IDX files;
* :func:`~deepal.data.sources.svhn.load_svhn`: MATLAB ``.mat`` files;
* :func:`~deepal.data.sources.cifar10.load_cifar10`: the Python-pickle tarball, read with a
  restricted unpickler;
* :func:`~deepal.data.sources.digits.load_digits`: scikit-learn's embedded 8x8 digits;
* :mod:`~deepal.data.sources.download`: the table of URLs and MD5s, and safe downloads.

Every reader validates what it decodes and raises
:class:`~deepal.errors.CorruptDataError` rather than return a wrong array.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any, NamedTuple

import torch

from deepal.errors import CorruptDataError, DatasetNotFoundError, DeepALError


class Splits(NamedTuple):
    """A data set's training and test splits, first axis = examples; labels are int64.

    Parameters
    ----------
    X_train, Y_train, X_test, Y_test:
        The splits' inputs and labels.

    Examples
    --------
    >>> from deepal.data.sources.digits import load_digits
    >>> load_digits().X_train.shape
    torch.Size([1347, 64])
    """

    X_train: torch.Tensor
    Y_train: torch.Tensor
    X_test: torch.Tensor
    Y_test: torch.Tensor


def corrupt_file(path: Path, problem: str) -> CorruptDataError:
    """The error for a bad data file.

    Parameters
    ----------
    path:
        The file.
    problem:
        What is wrong with it.

    Returns
    -------
    CorruptDataError
        An error naming the file and the problem and advising to delete it and re-download.

    Examples
    --------
    >>> type(corrupt_file(Path("mnist/t10k-images-idx3-ubyte.gz"), "it is truncated")).__name__
    'CorruptDataError'
    """
    return CorruptDataError(
        f"{path} is corrupted or not the original file ({problem}): delete it and run again "
        "to download it afresh (or fetch it by hand)"
    )


def refuse_non_file(file: Path, what: str, fix: str) -> None:
    """Refuse a folder (or a device, a socket...) where a data file should be.

    Parameters
    ----------
    file:
        The path.
    what:
        What it should be, for the message.
    fix:
        What to do about it, for the message.

    Raises
    ------
    DeepALError
        Something other than a regular file is at ``file``; nothing is there is fine.

    Examples
    --------
    >>> refuse_non_file(Path("no-such-file.npz"), "numpy file", "")
    """
    if file.exists() and not file.is_file():
        raise DeepALError(f"{what} {str(file)!r} is a folder or special file, not a file: {fix}")


def existing_file(path: str | os.PathLike[str], what: str) -> Path:
    """``path``, checked to be an existing regular file.

    Parameters
    ----------
    path:
        The file the user named.
    what:
        What it should be, for the messages (``"numpy file"``, ``"table"``).

    Returns
    -------
    Path
        The path.

    Raises
    ------
    DatasetNotFoundError
        Nothing is there.
    DeepALError
        A folder (or another non-file) is there.

    Examples
    --------
    >>> existing_file(".", "table")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    deepal.errors.DeepALError: table '.' is a folder or special file, not a file: ...
    """
    file = Path(path)
    refuse_non_file(file, what, "name the file itself")
    if not file.is_file():
        raise DatasetNotFoundError(f"{what} {str(path)!r} does not exist")
    return file


# The loaders are imported on first use: they pull in scipy.io, tarfile or scikit-learn,
# which a user of one data set should not pay for.
_LAZY = {
    "load_mnist": "mnist",
    "load_fashion_mnist": "mnist",
    "load_svhn": "svhn",
    "load_cifar10": "cifar10",
    "load_digits": "digits",
    "from_image_folder": "images",
    "from_table": "tables",
    "from_arrays": "arrays",
    "from_numpy_file": "arrays",
    "from_torch_dataset": "arrays",
    "from_texts": "texts",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"{__name__}.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Splits", "corrupt_file", "existing_file", "refuse_non_file", *_LAZY]
