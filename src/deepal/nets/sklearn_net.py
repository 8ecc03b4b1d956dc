"""A scikit-learn classifier in :class:`~deepal.Net`'s place: any estimator with ``fit`` and
``predict_proba`` (a random forest, a gradient-boosting model, a logistic regression...).

It offers what a strategy that needs only class probabilities uses (``train``, ``predict``,
``predict_prob``): random sampling, least confidence, margin and entropy sampling work with
it unchanged. Strategies that need a network's embeddings, its gradients or its dropout
(k-center, BADGE, BALD, the adversarial ones...) get a :class:`~deepal.errors.DeepALError`
naming the ones that work, at their first query.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from deepal.data.batches import iter_batches
from deepal.errors import DeepALError

#: Strategies that need only class probabilities (they work with :class:`SklearnNet`).
PROBABILITY_STRATEGIES = ("RandomSampling", "LeastConfidence", "MarginSampling",
                          "EntropySampling")


def _refusal(what: str) -> DeepALError:
    return DeepALError(
        f"this strategy needs {what}, which a scikit-learn classifier does not have: "
        f"with SklearnNet use one of {', '.join(PROBABILITY_STRATEGIES)}")


class _FittedEstimator:
    """What a strategy finds in :attr:`SklearnNet.clf` where it expects a torch module:
    the fitted estimator, and a clear refusal of any use of it as a module."""

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    def __getattr__(self, name: str) -> Any:
        raise _refusal("a network's module (its layers, dropout or gradients)")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise _refusal("a network's module (its layers, dropout or gradients)")


class SklearnNet:
    """A scikit-learn classifier with :class:`~deepal.Net`'s training and prediction methods.

    Parameters
    ----------
    estimator:
        An unfitted classifier with ``fit(X, y)`` and ``predict_proba(X)``; it is cloned
        (``sklearn.base.clone``) at every :meth:`train`, so each training starts afresh.
    batch_size:
        Examples read from a dataset at a time.

    Attributes
    ----------
    clf:
        ``None`` before :meth:`train`, then a holder of the fitted estimator (its
        ``estimator``) that refuses, by name, any use as a torch module.
    n_classes:
        Columns of :meth:`predict_prob` (set by the strategy from its data set; default:
        the classes seen at training).

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from deepal import Data, EntropySampling
    >>> X = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    >>> data = Data(X, (X[:, 0] > 0).astype(np.int64), X[:10], (X[:10, 0] > 0).astype(int))
    >>> _ = data.initialize_labels(10)
    >>> strategy = EntropySampling(data, SklearnNet(LogisticRegression()))
    >>> strategy.train()
    >>> len(strategy.query(5))
    5
    """

    def __init__(self, estimator: Any, batch_size: int = 1024) -> None:
        if not (hasattr(estimator, "fit") and hasattr(estimator, "predict_proba")):
            raise DeepALError(f"{type(estimator).__name__} has no fit and predict_proba: "
                              "SklearnNet needs a scikit-learn classifier that gives "
                              "probabilities (e.g. RandomForestClassifier, LogisticRegression)")
        self.estimator = estimator
        self.clf: Any = None
        self.n_classes: int | None = None
        self.device = torch.device("cpu")
        self.progress = False
        self.params: dict[str, Any] = {"n_epoch": 1, "test_args": {"batch_size": batch_size},
                                       "train_args": {"batch_size": batch_size}}
        self.training_hooks: list[Any] = []

    def _arrays(self, data: Dataset) -> tuple[np.ndarray, np.ndarray | None]:
        """The inputs of ``data`` as one 2-d array (items flattened) and its labels, if any."""
        xs, ys = [], []
        for batch in iter_batches(data, self.params["test_args"]["batch_size"]):
            xs.append(batch[0].reshape(len(batch[0]), -1).numpy())
            if len(batch) == 3:
                ys.append(batch[1].numpy())
        X = np.concatenate(xs) if xs else np.zeros((0, 0), dtype=np.float32)
        return X, (np.concatenate(ys) if ys else None)

    def train(self, data: Dataset, val_data: Dataset | None = None) -> None:
        """Fit a fresh clone of the estimator on ``data``'s examples and labels."""
        from sklearn.base import clone

        X, y = self._arrays(data)
        if y is None or not len(y):
            raise DeepALError("no labeled examples to train on: label some first")
        fitted = clone(self.estimator)
        fitted.fit(X, y)
        self.clf = _FittedEstimator(fitted)

    def predict_prob(self, data: Dataset) -> torch.Tensor:
        """Class probabilities ``(N, n_classes)``; a class absent from the training labels
        has probability 0."""
        if self.clf is None:
            raise DeepALError("the classifier is not trained yet: call train first")
        X, _ = self._arrays(data)
        fitted = self.clf.estimator
        probs = fitted.predict_proba(X)
        columns = [int(c) for c in fitted.classes_]
        width = max(self.n_classes or 0, max(columns) + 1)
        out = np.zeros((len(X), width), dtype=np.float32)
        out[:, columns] = probs
        return torch.from_numpy(out)

    def predict(self, data: Dataset) -> torch.Tensor:
        """The most probable class of every example."""
        return self.predict_prob(data).argmax(dim=1)

    def get_embeddings(self, data: Dataset, memmap: Any = None) -> torch.Tensor:
        raise _refusal("a network's embeddings")

    def get_embedding_dim(self) -> int:
        raise _refusal("a network's embeddings")

    def predict_prob_dropout(self, data: Dataset, n_drop: int = 10,
                             seed: int | None = None) -> torch.Tensor:
        raise _refusal("a network's dropout")

    def predict_prob_dropout_split(self, data: Dataset, n_drop: int = 10) -> torch.Tensor:
        raise _refusal("a network's dropout")

    def predict_prob_dropout_batches(self, data: Dataset, n_drop: int,
                                     seed: int | None = None) -> Any:
        raise _refusal("a network's dropout")

    @property
    def net(self) -> Any:
        """A network's module constructor: there is none (gradient-based strategies use it)."""
        raise _refusal("a network's module (for its gradients)")

    def state_dict(self) -> dict[str, Any]:
        raise DeepALError("a scikit-learn classifier cannot be saved as tensors (deepal "
                          "reads no pickle): save the labels and train it again instead")
