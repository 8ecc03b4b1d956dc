"""SVHN (cropped digits) from its original MATLAB files ``train_32x32.mat``, ``test_32x32.mat``.

Each file holds ``X``, ``uint8`` of shape ``(32, 32, 3, N)`` (height, width, channel, example),
and ``y`` of shape ``(N, 1)`` with labels 1..10, where 10 stands for the digit 0.

The ``.mat`` format (version 5) carries no checksum, so flipped pixel bytes cannot be detected
here; downloads are checked against the published MD5 instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from deepal.data.sources import Splits
from deepal.data.sources import corrupt_file as corrupt
from deepal.data.sources.download import TIMEOUT, ensure_files

#: SVHN's classes: the digits (label = digit, after mapping 10 to 0).
CLASSES = [str(d) for d in range(10)]


def read_svhn_mat(path: str | os.PathLike[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode one SVHN ``.mat`` file.

    Parameters
    ----------
    path:
        ``train_32x32.mat`` or ``test_32x32.mat`` (or a file of the same layout).

    Returns
    -------
    tuple[torch.Tensor, torch.Tensor]
        Images ``uint8`` of shape ``(N, 3, 32, 32)`` and labels ``int64`` 0..9.

    Raises
    ------
    CorruptDataError
        The file cannot be parsed, lacks ``X`` or ``y``, has other shapes or dtypes, or holds
        a label outside 1..10.
    """
    import scipy.io  # Imported here: only SVHN needs it.

    path = Path(path)
    try:
        mat = scipy.io.loadmat(path, variable_names=["X", "y"])
    # scipy reports a damaged file through many exception types (OSError "could not read
    # bytes", TypeError, IndexError, MatReadError, zlib.error, ...): any of them means corrupt.
    except Exception as error:
        raise corrupt(path, f"{type(error).__name__}: {error}") from error
    X, y = mat.get("X"), mat.get("y")
    if not isinstance(X, np.ndarray) or not isinstance(y, np.ndarray):
        raise corrupt(path, "it lacks the arrays 'X' and 'y'")
    if X.dtype != np.uint8 or X.ndim != 4 or X.shape[:3] != (32, 32, 3):
        raise corrupt(path, f"X is {X.dtype} {X.shape}, expected uint8 (32, 32, 3, N)")
    n = X.shape[3]
    if y.shape not in ((n, 1), (n,)) or not (
        np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)
    ):
        raise corrupt(path, f"y is {y.dtype} {y.shape}, expected {n} labels of shape ({n}, 1)")
    y = y.reshape(-1)
    labels = y.astype(np.int64)
    bad = (labels != y) | (labels < 1) | (labels > 10)
    if bad.any():
        raise corrupt(path, f"label {y[bad][0]} is not an integer in 1..10")
    # (H, W, C, N) -> (N, C, H, W); one contiguous copy, so batches index fast.
    images = np.ascontiguousarray(X.transpose(3, 2, 0, 1))
    return torch.from_numpy(images), torch.from_numpy(labels % 10)


def load_svhn(
    folder: str | os.PathLike[str], download: bool = True, timeout: float = TIMEOUT
) -> Splits:
    """SVHN's training (73,257) and test (26,032) splits; the ``extra`` split is not used.

    Parameters
    ----------
    folder:
        The folder of ``train_32x32.mat`` and ``test_32x32.mat`` (``<data_dir>/svhn``).
    download:
        Whether to download missing files (see :mod:`deepal.data.sources.download`).
    timeout:
        Seconds a download may wait for the server.

    Returns
    -------
    Splits
        Images ``uint8`` ``(N, 3, 32, 32)``, labels ``int64`` 0..9 (digit 0 is label 0).

    Examples
    --------
    ``splits = load_svhn("data/svhn")``: ``splits.X_train`` has shape ``(73257, 3, 32, 32)``.
    """
    paths = ensure_files("SVHN", folder, "svhn", download, timeout)
    X_train, Y_train = read_svhn_mat(paths["train_32x32.mat"])
    X_test, Y_test = read_svhn_mat(paths["test_32x32.mat"])
    return Splits(X_train, Y_train, X_test, Y_test)
