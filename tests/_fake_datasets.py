"""Small data files in the exact original formats, for tests.

Each ``write_*`` function fills a data set's folder with random images and labels, using the
original file names and layouts, and returns what a correct reader must decode:
``(X_train, Y_train, X_test, Y_test)`` as numpy arrays, images ``uint8`` ``(N, C, H, W)`` and
labels ``int64`` 0..9.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import scipy.io

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def idx_bytes(array: np.ndarray) -> bytes:
    """An uncompressed IDX file of ``uint8`` data: magic 0x0000_08_<ndim>, big-endian dims."""
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_gzip(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` gzip-compressed, as the MNIST files are."""
    with gzip.open(path, "wb") as f:
        f.write(data)


def _images(rng: np.random.Generator, n: int, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)


def _labels(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 10, size=n).astype(np.int64)


def write_mnist(folder: str | os.PathLike[str], n_train: int = 20, n_test: int = 8,
                seed: int = 0) -> Arrays:
    """Write the four gzip IDX files of MNIST (or Fashion-MNIST, same format) to ``folder``.

    Returns the images as ``(N, 1, 28, 28)`` and the labels.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images, labels = _images(rng, n, (28, 28)), _labels(rng, n)
        write_gzip(folder / f"{prefix}-images-idx3-ubyte.gz", idx_bytes(images))
        write_gzip(folder / f"{prefix}-labels-idx1-ubyte.gz", idx_bytes(labels.astype(np.uint8)))
        out += [images[:, None], labels]
    return out[0], out[1], out[2], out[3]


def write_svhn(folder: str | os.PathLike[str], n_train: int = 12, n_test: int = 6,
               seed: int = 0) -> Arrays:
    """Write ``train_32x32.mat`` and ``test_32x32.mat`` (MATLAB 5, ``X`` uint8
    ``(32, 32, 3, N)``, ``y`` uint8 ``(N, 1)`` with 10 for the digit 0) to ``folder``.

    Returns the images as ``(N, 3, 32, 32)`` and the labels with 0 for the digit 0.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for name, n in (("train_32x32.mat", n_train), ("test_32x32.mat", n_test)):
        images, labels = _images(rng, n, (3, 32, 32)), _labels(rng, n)
        labels[:2] = [0, 9]  # make sure the 10 -> 0 mapping is exercised
        mat_y = np.where(labels == 0, 10, labels).astype(np.uint8).reshape(n, 1)
        # (N, C, H, W) -> (H, W, C, N), SVHN's layout.
        scipy.io.savemat(folder / name, {"X": images.transpose(2, 3, 1, 0), "y": mat_y})
        out += [images, labels]
    return out[0], out[1], out[2], out[3]


def cifar_batch_bytes(images: np.ndarray, labels: np.ndarray, label: bytes = b"batch") -> bytes:
    """One CIFAR-10 batch: a protocol-2 pickle of a dict with bytes keys, ``b"data"`` of shape
    ``(n, 3072)`` (R plane, G plane, B plane, each row-major)."""
    n = len(images)
    batch = {
        b"batch_label": label,
        b"labels": [int(v) for v in labels],
        b"data": np.ascontiguousarray(images, dtype=np.uint8).reshape(n, 3 * 32 * 32),
        b"filenames": [f"img_{i}.png".encode() for i in range(n)],
    }
    return pickle.dumps(batch, protocol=2)


def write_cifar_tarball(path: str | os.PathLike[str], members: dict[str, bytes]) -> None:
    """Write a ``.tar.gz`` holding ``members`` (name -> bytes), in the given order."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def write_cifar10(folder: str | os.PathLike[str], n_per_batch: int = 4, n_test: int = 5,
                  seed: int = 0) -> Arrays:
    """Write ``cifar-10-python.tar.gz`` (five training batches of ``n_per_batch`` images, a
    test batch, and ``batches.meta``) to ``folder``.

    Returns the images as ``(N, 3, 32, 32)`` (training batches in order) and the labels.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    members: dict[str, bytes] = {}
    meta = {b"label_names": [b"airplane"], b"num_vis": 3072, b"num_cases_per_batch": 10000}
    members["cifar-10-batches-py/batches.meta"] = pickle.dumps(meta, protocol=2)
    train_x, train_y = [], []
    for i in range(1, 6):
        images, labels = _images(rng, n_per_batch, (3, 32, 32)), _labels(rng, n_per_batch)
        members[f"cifar-10-batches-py/data_batch_{i}"] = cifar_batch_bytes(images, labels)
        train_x.append(images)
        train_y.append(labels)
    test_x, test_y = _images(rng, n_test, (3, 32, 32)), _labels(rng, n_test)
    members["cifar-10-batches-py/readme.html"] = b"<html>fake</html>"
    members["cifar-10-batches-py/test_batch"] = cifar_batch_bytes(test_x, test_y)
    write_cifar_tarball(folder / "cifar-10-python.tar.gz", members)
    return np.concatenate(train_x), np.concatenate(train_y), test_x, test_y
