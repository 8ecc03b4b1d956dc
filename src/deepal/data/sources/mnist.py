"""MNIST and Fashion-MNIST from their original gzip-compressed IDX files.

An IDX file is a big-endian header (magic ``0x00000803`` for images, ``0x00000801`` for labels,
then one int32 per dimension) followed by the unsigned bytes, row-major. Both data sets use the
same four file names, in ``<data_dir>/mnist`` and ``<data_dir>/fashion-mnist``.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from deepal import resources
from deepal.data.sources import Splits
from deepal.data.sources import corrupt_file as corrupt
from deepal.data.sources.download import TIMEOUT, ensure_files
from deepal.errors import DeepALError

#: IDX magic numbers: unsigned bytes (type 0x08) with 3 dimensions (images) or 1 (labels).
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801

#: MNIST's classes: the digits.
MNIST_CLASSES = [str(d) for d in range(10)]

#: Fashion-MNIST's classes, index = label.
FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]

_SIDE = 28


#: Bytes decompressed per read: the payload grows by at most this much beyond what the file
#: actually holds, whatever size its header declares.
_CHUNK = 1 << 20

#: Deflate expands at most about 1032-fold, so a header declaring more than this many bytes
#: per compressed byte cannot be honest (checked before anything is read or allocated).
_MAX_RATIO = 1100


def _read_exactly(f: gzip.GzipFile, n: int, path: Path, what: str) -> bytearray:
    """Read exactly ``n`` bytes in bounded chunks, or report a truncated file.

    The buffer grows with the bytes actually decompressed, never to ``n`` up front: a damaged
    header declaring gigabytes fails at the end of the real data, having used only its size.
    """
    buf = bytearray()
    while len(buf) < n:
        chunk = f.read(min(_CHUNK, n - len(buf)))
        if not chunk:
            raise corrupt(path, f"{what}: {len(buf)} of the {n} declared bytes are present")
        buf += chunk
    return buf


def _check_declared(path: Path, dims: tuple[int, ...], declared: int, stored: int | None) -> None:
    """Refuse a header whose shape the file cannot hold, or this machine's memory, before
    anything is allocated."""
    compressed = path.stat().st_size
    if declared > _MAX_RATIO * compressed:
        raise corrupt(
            path, f"the header declares shape {dims} ({declared} bytes), more than a "
            f"{compressed}-byte gzip file can hold"
        )
    # gzip's trailer records the length mod 2**32.
    if stored is not None and declared % 2**32 != stored:
        raise corrupt(
            path, f"the header declares shape {dims} ({declared} bytes) but gzip's "
            f"trailer records {stored} bytes: the file is truncated or damaged"
        )
    # A header that may be honest (the data compresses that well): it must still fit.
    resources.refuse_beyond_memory(declared, f"the data of shape {dims} in {path}",
                                   "keep fewer examples in the file")


def _gzip_size(path: Path) -> int | None:
    """The uncompressed length (mod 2**32) recorded in a gzip file's last four bytes, or
    ``None`` if the file is too short to have them."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() < 18:  # 10-byte header + 8-byte trailer: the smallest gzip file.
                return None
            f.seek(-4, os.SEEK_END)
            return int(struct.unpack("<I", f.read(4))[0])
    except OSError as error:
        raise corrupt(path, f"cannot read it: {error}") from error


def read_idx(path: str | os.PathLike[str], magic: int,
             item_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Decode one gzip-compressed IDX file of unsigned bytes.

    Parameters
    ----------
    path:
        The ``.gz`` file.
    magic:
        The expected magic number, :data:`IMAGES_MAGIC` or :data:`LABELS_MAGIC`; its low byte
        is the number of dimensions.
    item_shape:
        The shape every example must have (all dimensions but the first), checked in the
        header before the data is read; ``None``: any.

    Returns
    -------
    np.ndarray
        A writable ``uint8`` array of the declared shape.

    Raises
    ------
    CorruptDataError
        The file is not gzip, is truncated, fails gzip's CRC check, has another magic number,
        or holds more or fewer bytes than its header declares, or its examples are not of
        ``item_shape``.

    Examples
    --------
    ``images = read_idx("train-images-idx3-ubyte.gz", IMAGES_MAGIC, item_shape=(28, 28))``
    """
    path = Path(path)
    ndim = magic & 0xFF
    stored = _gzip_size(path)
    try:
        with gzip.GzipFile(path, "rb") as f:
            (found,) = struct.unpack(">I", _read_exactly(f, 4, path, "header"))
            if found != magic:
                raise corrupt(path, f"magic number 0x{found:08X}, expected 0x{magic:08X}")
            dims = struct.unpack(f">{ndim}I", _read_exactly(f, 4 * ndim, path, "header"))
            if item_shape is not None and dims[1:] != item_shape:
                raise corrupt(path, f"examples are {dims[1:]}, expected {item_shape}")
            size = math.prod(dims)  # a Python int: no overflow
            _check_declared(path, dims, 4 + 4 * ndim + size, stored)
            payload = _read_exactly(f, size, path, f"data of shape {dims}")
            # Reading on to the end makes gzip verify its CRC (it checks only at the end) and
            # catches data beyond what the header declares.
            if f.read(1):
                raise corrupt(path, f"more bytes than the header's shape {dims} declares")
    except DeepALError:
        raise
    except (OSError, EOFError, zlib.error) as error:
        raise corrupt(path, f"{type(error).__name__}: {error}") from error
    return np.frombuffer(payload, dtype=np.uint8).reshape(dims)


def read_idx_pair(
    images_path: str | os.PathLike[str], labels_path: str | os.PathLike[str]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode a matching pair of 28x28 image and label IDX files.

    Parameters
    ----------
    images_path, labels_path:
        The ``*-images-idx3-ubyte.gz`` and ``*-labels-idx1-ubyte.gz`` files.

    Returns
    -------
    tuple[torch.Tensor, torch.Tensor]
        Images as ``uint8`` of shape ``(N, 1, 28, 28)`` and labels as ``int64`` of shape
        ``(N,)``.

    Raises
    ------
    CorruptDataError
        Either file is bad, the images are not 28x28, the counts differ, or a label is not
        0..9.
    """
    images_path, labels_path = Path(images_path), Path(labels_path)
    images = read_idx(images_path, IMAGES_MAGIC, item_shape=(_SIDE, _SIDE))
    labels = read_idx(labels_path, LABELS_MAGIC)
    if len(images) != len(labels):
        raise corrupt(
            labels_path, f"{len(labels)} labels for the {len(images)} images of {images_path.name}"
        )
    if labels.size and labels.max() > 9:
        raise corrupt(labels_path, f"label {int(labels.max())} is outside 0..9")
    X = torch.from_numpy(images).unsqueeze(1)
    Y = torch.from_numpy(labels.astype(np.int64))
    return X, Y


def _load(
    dataset: str, folder: str | os.PathLike[str], key: str, download: bool, timeout: float
) -> Splits:
    paths = ensure_files(dataset, folder, key, download, timeout)
    X_train, Y_train = read_idx_pair(
        paths["train-images-idx3-ubyte.gz"], paths["train-labels-idx1-ubyte.gz"]
    )
    X_test, Y_test = read_idx_pair(
        paths["t10k-images-idx3-ubyte.gz"], paths["t10k-labels-idx1-ubyte.gz"]
    )
    return Splits(X_train, Y_train, X_test, Y_test)


def load_mnist(
    folder: str | os.PathLike[str], download: bool = True, timeout: float = TIMEOUT
) -> Splits:
    """MNIST's training (60,000) and test (10,000) splits.

    Parameters
    ----------
    folder:
        The folder of the four IDX files (``<data_dir>/mnist``).
    download:
        Whether to download missing files (see :mod:`deepal.data.sources.download`).
    timeout:
        Seconds a download may wait for the server.

    Returns
    -------
    Splits
        Images ``uint8`` ``(N, 1, 28, 28)``, labels ``int64`` 0..9.

    Examples
    --------
    ``splits = load_mnist("data/mnist")``: ``splits.X_train`` has shape ``(60000, 1, 28, 28)``.
    """
    return _load("MNIST", folder, "mnist", download, timeout)


def load_fashion_mnist(
    folder: str | os.PathLike[str], download: bool = True, timeout: float = TIMEOUT
) -> Splits:
    """Fashion-MNIST's training (60,000) and test (10,000) splits.

    Parameters
    ----------
    folder:
        The folder of the four IDX files (``<data_dir>/fashion-mnist``).
    download:
        Whether to download missing files (see :mod:`deepal.data.sources.download`).
    timeout:
        Seconds a download may wait for the server.

    Returns
    -------
    Splits
        Images ``uint8`` ``(N, 1, 28, 28)``, labels ``int64`` 0..9 (see
        :data:`FASHION_CLASSES`).

    Examples
    --------
    ``splits = load_fashion_mnist("data/fashion-mnist")``: ``splits.X_train`` has shape
    ``(60000, 1, 28, 28)``.
    """
    return _load("FashionMNIST", folder, "fashion-mnist", download, timeout)
