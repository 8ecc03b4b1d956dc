"""TypiClust (Hacohen et al., 2022): typical examples of uncovered clusters, for low budgets."""

from __future__ import annotations

from typing import Any

import numpy as np

from deepal.config.arguments import integer, optional_integer
from deepal.data.pool import Data
from deepal.nets.net import Net
from deepal.scores.typicality import typiclust_select
from deepal.strategies.base import Strategy
from deepal.strategies.features import check_features, pool_features


class TypiClust(Strategy):
    """Cluster the embeddings into ``labeled + n`` clusters with k-means; from the largest
    clusters without a labeled example, pick the most typical unlabeled example (typicality =
    1 / mean distance to its ``k_neighbours`` nearest neighbours in the cluster).

    See :func:`~deepal.scores.typicality.typiclust_select`. The paper embeds with a
    self-supervised model: pass such ``features`` to use them instead of the network's
    embedding (then no trained network is needed, even for the first batch). Cost: one
    k-means of the
    labeled examples and candidates, and the typicality of each visited cluster
    (``O(size^2 d)`` in blocks).

    Parameters
    ----------
    dataset, net, random_state, max_candidates:
        As for :class:`~deepal.strategies.base.Strategy` (the last two by keyword).
    k_neighbours:
        Neighbours of the typicality (20, as in the paper).
    max_clusters:
        Cap on the number of k-means clusters (500 by default, as the authors' code).
    features:
        Fixed features of the whole pool, shape ``(n_pool, d)``, or ``None`` for the
        network's embedding (see :mod:`deepal.strategies.features`).

    Examples
    --------
    >>> import numpy as np
    >>> import deepal
    >>> from deepal.nets import MLP
    >>> X = np.random.default_rng(0).normal(size=(60, 4)).astype("float32")
    >>> data = deepal.Data(X, np.arange(60) % 3)
    >>> first = data.initialize_labels(12, random_state=0)
    >>> net = deepal.Net(lambda: MLP(n_features=4, n_classes=3), {"n_epoch": 2}, device="cpu")
    >>> strategy = deepal.TypiClust(data, net, random_state=0)
    >>> strategy.train()
    >>> picked = strategy.query(5)
    >>> len(set(picked.tolist())), bool(data.labeled_idxs[picked].any())
    (5, False)
    """

    def __init__(
        self,
        dataset: Data,
        net: Net,
        k_neighbours: int = 20,
        max_clusters: int | None = 500,
        features: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(dataset, net, **kwargs)
        self.features = check_features(features, dataset)
        self.needs_model = self.features is None  # type: ignore[misc]  # per instance
        self.k_neighbours = integer("k_neighbours", k_neighbours, minimum=1)
        self.max_clusters = optional_integer("max_clusters", max_clusters, minimum=1)

    def query(self, n: int) -> np.ndarray:
        idxs = np.union1d(np.flatnonzero(self.dataset.labeled_idxs), self.candidate_idxs())
        embeddings = pool_features(self, idxs, self.features)
        labeled = self.dataset.labeled_idxs[idxs]
        picks = typiclust_select(
            embeddings, labeled, n, self.rng, self.k_neighbours, self.max_clusters
        )
        return idxs[picks]
