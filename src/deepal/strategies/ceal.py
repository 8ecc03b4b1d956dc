"""Cost-effective active learning (Wang et al., 2016)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from deepal.config.arguments import number
from deepal.data.pool import Data, _take
from deepal.errors import DeepALError
from deepal.nets.net import Net
from deepal.scores import uncertainty
from deepal.scores.learned import confident_pseudo_labels
from deepal.scores.selection import top_n
from deepal.strategies.base import Strategy

#: The uncertainty criteria CEAL can query by (higher = more uncertain).
CRITERIA: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "entropy": uncertainty.entropy,
    "margin": uncertainty.margin,
    "least_confidence": uncertainty.least_confidence,
}


class CEAL(Strategy):
    """Uncertainty sampling plus confident pseudo-labels for the next training.

    Each query picks the ``n`` most uncertain unlabeled examples (``criterion``), and also
    keeps the unlabeled examples whose predictive entropy is below ``delta``, with the
    predicted class as a pseudo-label. The next :meth:`train` fits the net on the labeled
    set plus these pseudo-labeled examples, then forgets them: as in the paper, they are
    re-selected from scratch at every round, never counted as labels and never written into
    the pool (``Data.labeled_idxs`` and ``Data.Y_train`` are untouched). The threshold decays
    linearly, ``delta_t = delta - decay * t`` after ``t`` queries, as the model gets better.

    Parameters
    ----------
    dataset, net, random_state, max_candidates:
        As for :class:`~deepal.strategies.base.Strategy` (the last two by keyword).
        Pseudo-labels are drawn from the same candidates as the query.
    criterion:
        ``"entropy"`` (default), ``"margin"`` or ``"least_confidence"``.
    delta, decay:
        Initial entropy threshold (in nats) and its decrease per query.

    Attributes
    ----------
    pseudo_idxs, pseudo_labels:
        The pseudo-labeled pool indices and classes waiting for the next training.

    Examples
    --------
    >>> import numpy as np
    >>> import deepal
    >>> from deepal.nets import MLP
    >>> X = np.random.default_rng(0).normal(size=(60, 4)).astype("float32")
    >>> data = deepal.Data(X, np.arange(60) % 3)
    >>> first = data.initialize_labels(12, random_state=0)
    >>> net = deepal.Net(lambda: MLP(n_features=4, n_classes=3), {"n_epoch": 2}, device="cpu")
    >>> strategy = deepal.CEAL(data, net, random_state=0)
    >>> strategy.train()
    >>> picked = strategy.query(5)
    >>> len(set(picked.tolist())), bool(data.labeled_idxs[picked].any())
    (5, False)
    """

    state_attrs = (*Strategy.state_attrs, "n_queries", "pseudo_idxs", "pseudo_labels")

    def __init__(
        self,
        dataset: Data,
        net: Net,
        criterion: str = "entropy",
        delta: float = 0.005,
        decay: float = 0.00033,
        **kwargs: Any,
    ) -> None:
        super().__init__(dataset, net, **kwargs)
        if criterion not in CRITERIA:
            raise DeepALError(f"unknown criterion {criterion!r}: choose one of {sorted(CRITERIA)}")
        self.criterion = criterion
        self.delta = number("delta", delta, at_least=0)
        self.decay = number("decay", decay, at_least=0)
        self.n_queries = 0
        self.pseudo_idxs = np.empty(0, dtype=np.int64)
        self.pseudo_labels = np.empty(0, dtype=np.int64)

    @property
    def threshold(self) -> float:
        """The entropy threshold of the next query."""
        return max(self.delta - self.decay * self.n_queries, 0.0)

    def query(self, n: int) -> np.ndarray:
        idxs, data = self.candidates()
        probs = self.predict_prob(data)
        scores = CRITERIA[self.criterion](probs)
        self.last_scores = scores.numpy()
        picked = top_n(scores, n)
        positions, labels = confident_pseudo_labels(probs, self.threshold)
        keep = ~np.isin(positions.numpy(), picked)  # the picked ones get true labels
        self.pseudo_idxs = idxs[positions.numpy()[keep]]
        self.pseudo_labels = labels.numpy()[keep]
        self.n_queries += 1
        return idxs[picked]

    def train(self) -> None:
        """Train on the labeled set plus the pending pseudo-labels, then drop them."""
        data = self.dataset
        pending = ~data.labeled_idxs[self.pseudo_idxs]  # labeled since: the true label wins
        idxs = np.concatenate([np.flatnonzero(data.labeled_idxs), self.pseudo_idxs[pending]])
        labels = np.concatenate([data.Y_train[data.labeled_idxs], self.pseudo_labels[pending]])
        self.pseudo_idxs = np.empty(0, dtype=np.int64)
        self.pseudo_labels = np.empty(0, dtype=np.int64)
        self.net.train(data.handler(_take(data.X_train, idxs), labels))
