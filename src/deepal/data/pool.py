"""The pool: :class:`Data` holds the training pool, the test set and which examples are labeled."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from deepal.config.arguments import integer
from deepal.data.handlers import TensorHandler, as_tensor
from deepal.errors import DeepALError, EmptyPoolError, LabelsUnavailableError, PoolExhaustedError
from deepal.seeding import generator

#: Label value of an example whose label is not known (a real, unlabeled pool).
UNKNOWN = -1

#: About how many input values one step of the NaN check reads (16 MiB of float32 values).
_FINITE_CHUNK = 2**22

Handler = Callable[[Any, Any], Dataset]


class Data:
    """A pool-based active learning data set (DeepAL's ``Data``).

    Parameters
    ----------
    X_train, Y_train:
        The pool's inputs and labels. ``Y_train`` may be ``None`` (or hold ``-1``) for examples
        whose labels are unknown: they are supplied later through :meth:`label`. Floating
        point inputs (arrays, tensors) must be finite; labels must be whole numbers.
    X_test, Y_test:
        The test set, or ``None`` when there is none.
    handler:
        A callable ``handler(X, Y)`` returning a :class:`~torch.utils.data.Dataset` (a class, as
        in DeepAL, or a :func:`functools.partial`). Defaults to :class:`TensorHandler`, which
        accepts any numeric array or tensor.
    n_classes:
        The number of classes. Required when no labels are known; otherwise it defaults to one
        more than the largest known label (train or test), so a class missing from the labeled
        set does not shrink it.
    class_names:
        Optional names of the classes, index = class.

    Notes
    -----
    Strategies see the unlabeled pool through :meth:`get_unlabeled_data`, which carries no
    labels, so the same strategy works on a simulated pool and on one nobody has labelled.

    Examples
    --------
    >>> import numpy as np
    >>> from deepal import Data
    >>> rng = np.random.default_rng(0)
    >>> data = Data(rng.normal(size=(100, 5)), rng.integers(0, 3, 100),
    ...             rng.normal(size=(20, 5)), rng.integers(0, 3, 20), n_classes=3)
    >>> first = data.initialize_labels(10, random_state=0)
    >>> int(data.labeled_idxs.sum()), data.n_pool, data.n_test
    (10, 100, 20)
    """

    def __init__(
        self,
        X_train: Any,
        Y_train: Any | None,
        X_test: Any | None = None,
        Y_test: Any | None = None,
        handler: Handler | None = None,
        n_classes: int | None = None,
        class_names: list[str] | None = None,
    ) -> None:
        self.X_train = X_train
        self.n_pool = len(X_train)
        if self.n_pool == 0:
            raise EmptyPoolError("X_train is empty: the pool needs at least one example")
        _check_finite(X_train, "X_train")
        _check_finite(X_test, "X_test")
        self.Y_train = _labels(Y_train, self.n_pool, "Y_train")
        self.X_test = X_test
        self.n_test = 0 if X_test is None else len(X_test)
        self.Y_test = None if Y_test is None else _labels(Y_test, self.n_test, "Y_test")
        if X_test is not None and Y_test is None:
            raise DeepALError("X_test was given without Y_test: a test set needs its labels")
        self.handler: Handler = handler if handler is not None else TensorHandler
        self.n_classes = _n_classes(n_classes, self.Y_train, self.Y_test, class_names)
        self.class_names = class_names
        self.labeled_idxs = np.zeros(self.n_pool, dtype=bool)

    # -- the labeled set -------------------------------------------------------------------

    def initialize_labels(
        self, num: int, random_state: int | np.random.Generator | None = None,
        balanced: bool = False,
    ) -> np.ndarray:
        """Label ``num`` pool examples chosen uniformly at random; returns their indices.

        With ``balanced``, ``num / n_classes`` examples of each class are drawn (as in Gal et
        al., 2017 and Kirsch et al., 2019: 2 per class on MNIST); ``num`` must then be a
        multiple of ``n_classes``.

        Their labels must be known (a simulated pool); for a real pool, choose the first batch
        with a strategy (``RandomSampling`` works without a model) and call :meth:`label`.

        Parameters
        ----------
        num:
            How many examples to label, an integer from 0 to :attr:`n_pool`.
        random_state:
            A seed or a generator; ``None`` draws from numpy's global generator, so
            ``np.random.seed`` or :func:`deepal.seed_everything` fixes the choice.
        balanced:
            Draw the same number of examples of each class.

        Returns
        -------
        numpy.ndarray
            The sorted indices of the newly labeled examples.

        Raises
        ------
        ConfigError
            If ``num`` is not an integer >= 0.
        PoolExhaustedError
            If fewer than ``num`` examples are unlabeled.
        """
        num = integer("num", num)
        if num > self.n_pool:
            raise PoolExhaustedError(
                f"cannot label {num} initial examples: the pool holds {self.n_pool}"
            )
        candidates = np.flatnonzero(~self.labeled_idxs)
        if num > len(candidates):
            raise PoolExhaustedError(
                f"cannot label {num} more examples: only {len(candidates)} are unlabeled"
            )
        unknown = int((self.Y_train[candidates] == UNKNOWN).sum())
        if num and unknown:
            raise LabelsUnavailableError(
                f"initialize_labels reveals known labels, but {unknown} unlabeled examples have "
                "none: pick a first batch with RandomSampling(data, net).query(n) and give its "
                "labels with data.label(idxs, labels)"
            )
        rng = generator(random_state)  # drawn once the request is known to be possible
        if balanced:
            chosen = self._balanced_choice(candidates, num, rng)
        else:
            chosen = np.sort(rng.choice(candidates, size=num, replace=False))
        self.label(chosen)
        return chosen

    def _balanced_choice(
        self, candidates: np.ndarray, num: int, rng: np.random.Generator
    ) -> np.ndarray:
        per_class, rest = divmod(num, self.n_classes)
        if rest:
            raise DeepALError(
                f"cannot draw {num} initial labels balanced over {self.n_classes} classes: "
                f"use a multiple of {self.n_classes} (e.g. {self.n_classes * max(per_class, 1)})"
            )
        picks = []
        for label in range(self.n_classes):
            members = candidates[self.Y_train[candidates] == label]
            if len(members) < per_class:
                raise PoolExhaustedError(
                    f"class {label} has {len(members)} unlabeled examples, fewer than the "
                    f"{per_class} a balanced start needs: lower n_init_labeled or use random"
                )
            picks.append(rng.choice(members, size=per_class, replace=False))
        return np.sort(np.concatenate(picks)) if picks else np.empty(0, dtype=np.int64)

    def label(self, idxs: Any, labels: Any | None = None) -> None:
        """Mark pool examples ``idxs`` as labeled, recording ``labels`` if given.

        Without ``labels`` the examples' labels must already be known (a simulated pool, where
        labelling reveals them). Raises before changing anything if an index is out of range,
        repeated, already labeled, or a label is outside ``0 .. n_classes - 1``.
        """
        idxs = self._check_new_idxs(idxs)
        if labels is not None:
            values = _class_indices(labels, "labels")
            if len(values) != len(idxs):
                raise DeepALError(f"got {len(idxs)} indices but {len(values)} labels")
            bad = (values < 0) | (values >= self.n_classes)
            if bad.any():
                raise DeepALError(
                    f"label {values[bad][0]} is outside 0..{self.n_classes - 1} "
                    f"(n_classes={self.n_classes})"
                )
            self.Y_train[idxs] = values
        missing = idxs[self.Y_train[idxs] == UNKNOWN]
        if len(missing):
            raise LabelsUnavailableError(
                f"{len(missing)} of these examples have no known label (e.g. index "
                f"{missing[0]}): pass their labels, e.g. strategy.update(idxs, labels)"
            )
        self.labeled_idxs[idxs] = True

    def unlabel(self, idxs: Any) -> None:
        """Return labeled examples ``idxs`` to the unlabeled pool."""
        idxs = np.asarray(idxs, dtype=np.int64).reshape(-1)
        self._check_range(idxs)
        self.labeled_idxs[idxs] = False

    def _check_range(self, idxs: np.ndarray) -> None:
        if len(idxs) and (idxs.min() < 0 or idxs.max() >= self.n_pool):
            raise DeepALError(f"index out of range: the pool has indices 0..{self.n_pool - 1}")

    def _check_new_idxs(self, idxs: Any) -> np.ndarray:
        arr = np.asarray(idxs)
        if arr.dtype == bool:
            raise DeepALError("pass pool indices, not a boolean mask (use np.flatnonzero(mask))")
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise DeepALError(f"pool indices must be integers, got dtype {arr.dtype}")
        arr = arr.astype(np.int64).reshape(-1)
        self._check_range(arr)
        if len(np.unique(arr)) != len(arr):
            raise DeepALError("the same pool index appears more than once")
        already = arr[self.labeled_idxs[arr]]
        if len(already):
            raise DeepALError(f"pool index {already[0]} is already labeled")
        return arr

    # -- views ---------------------------------------------------------------------------

    @property
    def n_labeled(self) -> int:
        return int(self.labeled_idxs.sum())

    @property
    def n_unlabeled(self) -> int:
        return self.n_pool - self.n_labeled

    def get_labeled_data(self) -> tuple[np.ndarray, Dataset]:
        """Indices of the labeled examples and a dataset of them with their labels."""
        idxs = np.flatnonzero(self.labeled_idxs)
        return idxs, self.handler(_take(self.X_train, idxs), self.Y_train[idxs])

    def get_unlabeled_data(self) -> tuple[np.ndarray, Dataset]:
        """Indices of the unlabeled examples and a dataset of their inputs only (no labels)."""
        idxs = np.flatnonzero(~self.labeled_idxs)
        return idxs, self.get_inputs(idxs)

    def get_inputs(self, idxs: np.ndarray) -> Dataset:
        """A dataset of the inputs of pool examples ``idxs``, without labels."""
        return self.handler(_take(self.X_train, np.asarray(idxs)), None)

    def get_train_data(self) -> tuple[np.ndarray, Dataset]:
        """The labeled mask and a dataset of the whole pool's inputs.

        Unlike DeepAL, the dataset carries no labels: the labels of unlabeled examples must
        never reach a strategy. Use :meth:`get_labeled_data` for labeled pairs."""
        return self.labeled_idxs.copy(), self.handler(self.X_train, None)

    def get_test_data(self) -> Dataset:
        """The test set with its labels."""
        if self.X_test is None:
            raise EmptyPoolError("this Data has no test set (X_test is None)")
        return self.handler(self.X_test, self.Y_test)

    def cal_test_acc(self, preds: Any) -> float:
        """Accuracy of predictions ``preds`` (one per test example) against ``Y_test``."""
        if self.Y_test is None:
            raise EmptyPoolError("this Data has no test set, so no test accuracy")
        preds = as_tensor(preds).long().numpy().reshape(-1)
        if len(preds) != self.n_test:
            raise DeepALError(f"got {len(preds)} predictions for {self.n_test} test examples")
        return float((preds == self.Y_test).mean())

    def __repr__(self) -> str:
        return (
            f"Data(n_pool={self.n_pool}, n_labeled={self.n_labeled}, n_test={self.n_test}, "
            f"n_classes={self.n_classes})"
        )


def _take(X: Any, idxs: np.ndarray) -> Any:
    """Rows ``idxs`` of an array, tensor or list."""
    if isinstance(X, torch.Tensor):
        return X[torch.as_tensor(idxs, dtype=torch.long)]
    if isinstance(X, np.ndarray):
        return X[idxs]
    return [X[i] for i in idxs]


def _labels(Y: Any | None, n: int, name: str) -> np.ndarray:
    """Labels as an int64 numpy array of length ``n``; ``None`` means all unknown."""
    if Y is None:
        return np.full(n, UNKNOWN, dtype=np.int64)
    arr = _class_indices(Y, name)
    if len(arr) != n:
        raise DeepALError(f"{name} has {len(arr)} labels for {n} examples")
    if arr.size and arr.min() < UNKNOWN:
        raise DeepALError(f"{name} holds negative label {arr.min()}: use 0..C-1 (or -1 = unknown)")
    return arr


def _class_indices(Y: Any, name: str) -> np.ndarray:
    """Labels ``Y`` (array, tensor or sequence) as a flat int64 array, refusing any that is
    not a whole number: a float label such as 1.7, NaN or infinity is a mistake, not a class."""
    arr = (as_tensor(Y).numpy() if isinstance(Y, torch.Tensor) else np.asarray(Y)).reshape(-1)
    if arr.dtype.kind not in "biuf":
        raise DeepALError(
            f"{name} must hold integer class indices 0..C-1, got values of dtype {arr.dtype}"
        )
    if arr.dtype.kind == "f":
        wrong = ~np.isfinite(arr)
        wrong[~wrong] = np.mod(arr[~wrong], 1) != 0
        if wrong.any():
            first = int(np.flatnonzero(wrong)[0])
            raise DeepALError(
                f"{name} must hold integer class indices 0..C-1, but {int(wrong.sum())} are "
                f"not whole numbers (first: {arr[first]} at position {first}); use -1 for "
                "an unknown label"
            )
    return arr.astype(np.int64)


def _check_finite(X: Any, name: str) -> None:
    """Refuse floating point inputs ``X`` (a numpy array or tensor) holding NaN or infinity.

    Rows are checked a chunk at a time, so a large or memory-mapped pool is never copied
    whole; other dtypes and other containers (lists of paths, texts) are not checked."""
    isfinite: Callable[[Any], Any]
    if isinstance(X, torch.Tensor):
        floating, isfinite = X.is_floating_point(), torch.isfinite
    elif isinstance(X, np.ndarray):
        floating, isfinite = np.issubdtype(X.dtype, np.floating), np.isfinite
    else:
        return
    if not floating or X.ndim == 0:
        return
    step = max(1, _FINITE_CHUNK // max(1, int(np.prod(X.shape[1:]))))
    bad: list[np.ndarray] = []
    for start in range(0, len(X), step):
        block = X[start : start + step]
        finite = isfinite(block).reshape(len(block), -1).all(1)
        finite = finite.cpu().numpy() if isinstance(finite, torch.Tensor) else finite
        bad.append(start + np.flatnonzero(~finite))
    rows = np.concatenate(bad)
    if len(rows):
        raise DeepALError(
            f"{name} holds NaN or infinite values in {len(rows)} rows (first: row "
            f"{int(rows[0])}): remove or impute them before making the pool"
        )


def _n_classes(
    n_classes: int | None,
    Y_train: np.ndarray,
    Y_test: np.ndarray | None,
    class_names: list[str] | None,
) -> int:
    known = [y[y != UNKNOWN] for y in (Y_train, Y_test) if y is not None]
    largest = max((int(y.max()) for y in known if y.size), default=-1)
    if n_classes is not None:
        n_classes = integer("n_classes", n_classes, minimum=2)
    elif class_names is not None:
        n_classes = len(class_names)
    elif largest >= 0:
        n_classes = largest + 1
    else:
        raise DeepALError("no labels are known, so pass n_classes (the number of classes)")
    if n_classes < 2:
        raise DeepALError(f"n_classes must be at least 2, got {n_classes}")
    if largest >= n_classes:
        raise DeepALError(f"label {largest} does not fit n_classes={n_classes}")
    if class_names is not None and len(class_names) != n_classes:
        raise DeepALError(f"{len(class_names)} class_names for n_classes={n_classes}")
    return int(n_classes)
