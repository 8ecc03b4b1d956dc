"""CIFAR-10 from its original tarball ``cifar-10-python.tar.gz``, read without extracting it.

The tarball holds ``cifar-10-batches-py/data_batch_1`` .. ``data_batch_5`` (training) and
``test_batch``: each a pickle written by Python 2 (protocol 2) of a dict with ``b"data"``,
``uint8`` of shape ``(n, 3072)`` (a row is 1024 red, 1024 green, then 1024 blue values, each a
32x32 image row-major), and ``b"labels"``, a list of n ints 0..9.

Unpickling can run arbitrary code, so the batches are read with :class:`RestrictedUnpickler`,
which resolves only the handful of globals such a file needs (numpy's array reconstruction and
``_codecs.encode``) and refuses everything else.
"""

from __future__ import annotations

import codecs
import gzip
import io
import os
import pickle
import tarfile
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepal.data.sources import Splits
from deepal.data.sources import corrupt_file as corrupt
from deepal.data.sources.download import TIMEOUT, ensure_files
from deepal.errors import CorruptDataError

#: CIFAR-10's classes, index = label.
CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
]

ARCHIVE = "cifar-10-python.tar.gz"
_FOLDER = "cifar-10-batches-py"
TRAIN_MEMBERS = tuple(f"{_FOLDER}/data_batch_{i}" for i in range(1, 6))
TEST_MEMBER = f"{_FOLDER}/test_batch"

#: The largest batch read: the original's are 10,000 images of 3,072 bytes (about 31 MB).
MAX_BATCH_BYTES = 64 << 20


def _latin1_encode(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    # Protocol-2 pickles written by Python 3 store bytes as _codecs.encode(text, "latin1");
    # allow exactly that use, not arbitrary codecs.
    if codecs.lookup(encoding).name != "iso8859-1":
        raise CorruptDataError(f"the pickle asks for _codecs.encode(..., {encoding!r})")
    return codecs.encode(text, "latin1", errors)


def _allowed_globals() -> dict[tuple[str, str], Any]:
    try:  # numpy >= 2 keeps the implementation in numpy._core
        from numpy._core import multiarray
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray  # type: ignore[no-redef]
    return {
        # Python-2 era files name numpy.core; numpy >= 2 writes numpy._core.
        ("numpy.core.multiarray", "_reconstruct"): multiarray._reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): multiarray._reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals a CIFAR batch needs.

    Any other global (``os.system``, ``builtins.eval``, ``subprocess.Popen``...) raises
    :class:`~deepal.errors.CorruptDataError` before it can be called.
    """

    _allowed: dict[tuple[str, str], Any] | None = None

    def find_class(self, module: str, name: str) -> Callable[..., Any]:
        if RestrictedUnpickler._allowed is None:
            RestrictedUnpickler._allowed = _allowed_globals()
        try:
            return RestrictedUnpickler._allowed[(module, name)]  # type: ignore[no-any-return]
        except KeyError:
            raise CorruptDataError(
                f"the pickle refers to {module}.{name}, which a CIFAR-10 batch never does; "
                "refusing to load it"
            ) from None


def restricted_loads(data: bytes) -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler` (byte strings stay ``bytes``).

    Parameters
    ----------
    data:
        The pickle.

    Returns
    -------
    Any
        The object: dicts, lists, numbers, bytes and numpy arrays only.

    Raises
    ------
    CorruptDataError
        The pickle refers to a global outside the allowed few.
    pickle.UnpicklingError, EOFError, ValueError, TypeError
        The pickle is damaged (the callers turn these into :class:`CorruptDataError`).
    """
    return RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()


def decode_batch(data: bytes, archive: Path, member: str) -> tuple[np.ndarray, np.ndarray]:
    """Decode one pickled CIFAR-10 batch.

    Parameters
    ----------
    data:
        The batch file's bytes.
    archive, member:
        Where it comes from, for messages.

    Returns
    -------
    tuple[np.ndarray, np.ndarray]
        Images ``uint8`` of shape ``(n, 3, 32, 32)`` and labels ``int64`` 0..9.

    Raises
    ------
    CorruptDataError
        The pickle is damaged, unsafe or not a batch of the expected layout.
    """
    def bad(problem: str) -> CorruptDataError:
        return corrupt(archive, f"{member}: {problem}")

    try:
        batch = restricted_loads(data)
    except CorruptDataError as error:
        raise bad(str(error)) from error
    # A damaged pickle fails in many ways (UnpicklingError, EOFError, ValueError from numpy,
    # TypeError, KeyError from the memo...): all mean the same thing here.
    except Exception as error:
        raise bad(f"unreadable pickle: {type(error).__name__}: {error}") from error
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise bad("not a dict with b'data' and b'labels'")
    images = _checked_images(batch[b"data"], bad)
    y = _checked_labels(batch[b"labels"], len(images), bad)
    # Each row is the R, G and B planes in turn, so it reshapes straight to (C, H, W).
    return images.reshape(-1, 3, 32, 32), y


def _checked_images(images: Any, bad: Callable[[str], CorruptDataError]) -> np.ndarray:
    """A batch's ``b'data'``: a ``uint8`` array ``(n, 3072)``, or ``bad``'s error."""
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 2 \
            or images.shape[1] != 3 * 32 * 32:
        shape = getattr(images, "shape", type(images).__name__)
        raise bad(f"b'data' is {shape}, expected uint8 (n, 3072)")
    return images


def _checked_labels(labels: Any, n: int, bad: Callable[[str], CorruptDataError]) -> np.ndarray:
    """A batch's ``b'labels'``: ``n`` ints in 0..9 as ``int64``, or ``bad``'s error."""
    if not isinstance(labels, (list, np.ndarray)) or len(labels) != n or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in labels
    ):
        raise bad(f"b'labels' is not a list of {n} ints")
    y = np.asarray(labels, dtype=np.int64)
    if y.size and (y.min() < 0 or y.max() > 9):
        raise bad(f"label {int(y[(y < 0) | (y > 9)][0])} is outside 0..9")
    return y


def _check_member(path: Path, member: tarfile.TarInfo, found: Mapping[str, object]) -> None:
    """Refuse a repeated batch, one that is not a file, or one too large, before reading it."""
    if member.name in found or not member.isfile():
        raise corrupt(path, f"{member.name} is repeated or not a file")
    if member.size > MAX_BATCH_BYTES:
        raise corrupt(path, f"{member.name} declares {member.size} bytes, more than a batch "
                      f"of CIFAR-10 ({MAX_BATCH_BYTES})")


def read_cifar10_archive(
    path: str | os.PathLike[str],
) -> Splits:
    """Decode the CIFAR-10 tarball in one pass, without extracting it.

    Parameters
    ----------
    path:
        ``cifar-10-python.tar.gz``.

    Returns
    -------
    Splits
        The five training batches in order, then the test batch: images ``uint8``
        ``(N, 3, 32, 32)``, labels ``int64``.

    Raises
    ------
    CorruptDataError
        The archive is not gzip, is truncated, fails gzip's CRC check, lacks a batch, or a
        batch is bad.
    """
    path = Path(path)
    wanted = {*TRAIN_MEMBERS, TEST_MEMBER}
    found: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    try:
        with gzip.open(path, "rb") as gz:
            # Stream mode reads the archive front to back once, decompressing as it goes.
            with tarfile.open(fileobj=gz, mode="r|") as tar:
                for member in tar:
                    if member.name not in wanted:
                        continue
                    _check_member(path, member, found)
                    f = tar.extractfile(member)
                    if f is None:  # pragma: no cover - isfile() was checked
                        raise corrupt(path, f"{member.name} cannot be read")
                    found[member.name] = decode_batch(f.read(), path, member.name)
            # gzip checks its CRC only at the end of the stream, which tarfile may not reach.
            while gz.read(1 << 20):
                pass
    except CorruptDataError:
        raise
    except (OSError, EOFError, zlib.error, tarfile.TarError) as error:
        raise corrupt(path, f"{type(error).__name__}: {error}") from error
    absent = sorted(wanted - found.keys())
    if absent:
        raise corrupt(path, f"it lacks {', '.join(absent)}")
    train = [found[name] for name in TRAIN_MEMBERS]
    X_train = torch.from_numpy(np.concatenate([x for x, _ in train]))
    Y_train = torch.from_numpy(np.concatenate([y for _, y in train]))
    X_test, Y_test = found[TEST_MEMBER]
    # The test images may share the pickle's read-only buffer; torch wants a writable array.
    X_test = X_test if X_test.flags.writeable else X_test.copy()
    return Splits(X_train, Y_train, torch.from_numpy(X_test), torch.from_numpy(Y_test))


def load_cifar10(
    folder: str | os.PathLike[str], download: bool = True, timeout: float = TIMEOUT
) -> Splits:
    """CIFAR-10's training (50,000) and test (10,000) splits.

    Parameters
    ----------
    folder:
        The folder of ``cifar-10-python.tar.gz`` (``<data_dir>/cifar-10``).
    download:
        Whether to download it if missing (see :mod:`deepal.data.sources.download`).
    timeout:
        Seconds a download may wait for the server.

    Returns
    -------
    Splits
        Images ``uint8`` ``(N, 3, 32, 32)``, labels ``int64`` 0..9 (see :data:`CLASSES`).

    Examples
    --------
    ``splits = load_cifar10("data/cifar-10")``: ``splits.X_train`` has shape ``(50000, 3, 32, 32)``.
    """
    paths = ensure_files("CIFAR10", folder, "cifar-10", download, timeout)
    return read_cifar10_archive(paths[ARCHIVE])
