"""``get_dataset``: the data sets of DeepAL's demo, by name, as :class:`Data` pools.

Files live in ``<data_dir>/<folder>`` (``mnist``, ``fashion-mnist``, ``svhn``, ``cifar-10``),
under their original names; ``data_dir`` is the argument, else the environment variable
``DEEPAL_DATA``, else ``./data``. Missing files are downloaded (see
:mod:`deepal.data.sources.download`). ``digits`` is embedded in scikit-learn and needs no file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from deepal.config.arguments import optional_integer
from deepal.data.handlers import image_handler
from deepal.data.pool import Data, Handler
from deepal.data.sources import Splits, cifar10, digits, mnist, svhn
from deepal.errors import DeepALError
from deepal.plugins import canonical_name

#: Environment variable naming the data folder when no ``data_dir`` is given.
DATA_ENV = "DEEPAL_DATA"

#: The data folder used when neither ``data_dir`` nor ``DEEPAL_DATA`` is given.
DEFAULT_DATA_DIR = "data"


@dataclass(frozen=True)
class _Spec:
    loader: Callable[..., Splits]
    folder: str | None  # subfolder of data_dir; None: needs no file
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    classes: list[str]


# Per data set: its loader, folder, DeepAL's normalisation statistics and the class names.
_SPECS: dict[str, _Spec] = {
    "MNIST": _Spec(mnist.load_mnist, "mnist", (0.1307,), (0.3081,), mnist.MNIST_CLASSES),
    "FashionMNIST": _Spec(
        mnist.load_fashion_mnist, "fashion-mnist", (0.1307,), (0.3081,), mnist.FASHION_CLASSES
    ),
    "SVHN": _Spec(
        svhn.load_svhn, "svhn", (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970), svhn.CLASSES
    ),
    "CIFAR10": _Spec(
        cifar10.load_cifar10, "cifar-10", (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
        cifar10.CLASSES,
    ),
    "digits": _Spec(digits.load_digits, None, None, None, digits.CLASSES),
}

#: The names :func:`get_dataset` knows (matched ignoring case).
DATASETS: tuple[str, ...] = tuple(_SPECS)


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder that holds the data sets' subfolders.

    Parameters
    ----------
    data_dir:
        An explicit folder; wins when given.

    Returns
    -------
    Path
        ``data_dir``, else ``$DEEPAL_DATA`` (if set and not empty), else ``./data``; ``~`` is
        expanded.
    """
    if data_dir is None:
        data_dir = os.environ.get(DATA_ENV) or DEFAULT_DATA_DIR
    return Path(data_dir).expanduser()


def get_dataset(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    n_pool: int | None = None,
    download: bool = True,
) -> Data:
    """A data set of DeepAL's demo as a :class:`Data` pool, nothing labeled yet.

    Parameters
    ----------
    name:
        ``"MNIST"``, ``"FashionMNIST"``, ``"SVHN"``, ``"CIFAR10"`` or ``"digits"`` (any case).
    data_dir:
        The folder holding ``mnist/``, ``fashion-mnist/``, ``svhn/`` and ``cifar-10/``; default
        ``$DEEPAL_DATA``, else ``./data``. Ignored for ``digits``.
    n_pool:
        Keep only the first ``n_pool`` training examples (DeepAL's demo used 40,000); default
        the whole training split. The test split is always whole.
    download:
        Whether to download missing files from their publishers (MD5-checked).

    Returns
    -------
    Data
        Images as ``uint8`` tensors ``(N, C, H, W)`` with an :func:`image_handler` applying
        DeepAL's normalisation; ``digits`` as ``float32`` ``(N, 64)`` in [0, 1] with the default
        handler. Labels are ``int64``; ``n_classes`` is 10 and ``class_names`` is set.

    Raises
    ------
    UnknownNameError
        ``name`` is not one of :data:`DATASETS`.
    DatasetNotFoundError
        Files are missing and could not be downloaded.
    CorruptDataError
        A file is damaged (delete it and run again).
    ConfigError
        ``n_pool`` is not a whole number of at least 1.
    DeepALError
        ``n_pool`` is larger than the training split.

    Examples
    --------
    >>> data = get_dataset("digits")
    >>> data.n_pool, data.n_test, data.n_labeled
    (1347, 450, 0)
    """
    canonical = canonical_name(name, DATASETS, "data set")
    spec = _SPECS[canonical]
    n_pool = optional_integer("n_pool", n_pool, minimum=1)
    if spec.folder is None:
        splits = spec.loader()
    else:
        splits = spec.loader(resolve_data_dir(data_dir) / spec.folder, download=download)
    X_train, Y_train = splits.X_train, splits.Y_train
    if n_pool is not None:
        if n_pool > len(X_train):
            raise DeepALError(
                f"n_pool={n_pool} exceeds the {len(X_train)} training examples of {canonical}"
            )
        # clone() so the dropped examples' memory is freed, not kept alive by a view.
        X_train, Y_train = X_train[:n_pool].clone(), Y_train[:n_pool].clone()
    handler: Handler | None = None
    if spec.mean is not None and spec.std is not None:
        handler = image_handler(spec.mean, spec.std)
    return Data(
        X_train, Y_train, splits.X_test, splits.Y_test,
        handler=handler, n_classes=10, class_names=list(spec.classes),
    )
