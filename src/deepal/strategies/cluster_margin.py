"""Cluster-Margin (Citovsky et al., 2021): lowest margins, spread round-robin over clusters."""

from __future__ import annotations

from typing import Any

import numpy as np

from deepal.config.arguments import integer, number, optional_integer
from deepal.data.pool import Data
from deepal.nets.net import Net
from deepal.scores.hierarchical import average_linkage_clusters, round_robin
from deepal.scores.selection import top_n
from deepal.scores.uncertainty import margin
from deepal.strategies.base import Strategy


class ClusterMargin(Strategy):
    """Take the ``margin_multiple * n`` unlabeled examples with the smallest margin between
    their two most probable classes, then pick ``n`` of them round-robin over clusters,
    smallest cluster first, a random member each time.

    The clusters come from average-linkage agglomerative clustering of the whole pool's
    embeddings, computed once, at the first query (the paper's "HAC once" with the first
    model), and kept for later queries. To bound memory, at most ``max_cluster_points``
    examples are clustered directly and the others join the cluster of their nearest
    clustered example (:func:`~deepal.scores.hierarchical.average_linkage_clusters`).

    Parameters
    ----------
    dataset, net, random_state, max_candidates:
        As for :class:`~deepal.strategies.base.Strategy` (the last two by keyword).
    margin_multiple:
        ``k_m / n``: how many low-margin examples per pick enter the round robin.
    distance_threshold:
        Height at which the dendrogram is cut (embedding units); ``None`` cuts it into
        ``n_clusters`` clusters instead.
    n_clusters:
        Number of clusters without a threshold; ``None``: ``round(sqrt(m))`` for ``m``
        clustered examples.
    max_cluster_points:
        Most examples clustered directly (memory about ``4 * max_cluster_points^2`` bytes).

    Attributes
    ----------
    cluster_ids:
        The cluster of every pool example (``None`` before the first query).
    last_scores:
        The candidates' negated margins at the last query (higher = less sure).

    Examples
    --------
    >>> import numpy as np
    >>> import deepal
    >>> from deepal.nets import MLP
    >>> X = np.random.default_rng(0).normal(size=(60, 4)).astype("float32")
    >>> data = deepal.Data(X, np.arange(60) % 3)
    >>> first = data.initialize_labels(12, random_state=0)
    >>> net = deepal.Net(lambda: MLP(n_features=4, n_classes=3), {"n_epoch": 2}, device="cpu")
    >>> strategy = deepal.ClusterMargin(data, net, random_state=0)
    >>> strategy.train()
    >>> picked = strategy.query(5)
    >>> len(set(picked.tolist())), bool(data.labeled_idxs[picked].any())
    (5, False)
    """

    state_attrs = (*Strategy.state_attrs, "cluster_ids")

    def __init__(
        self,
        dataset: Data,
        net: Net,
        margin_multiple: float = 10.0,
        distance_threshold: float | None = None,
        n_clusters: int | None = None,
        max_cluster_points: int = 5000,
        **kwargs: Any,
    ) -> None:
        super().__init__(dataset, net, **kwargs)
        self.margin_multiple = number("margin_multiple", margin_multiple, at_least=1)
        self.distance_threshold = None if distance_threshold is None else number(
            "distance_threshold", distance_threshold, at_least=0)
        self.n_clusters = optional_integer("n_clusters", n_clusters, minimum=1)
        self.max_cluster_points = integer("max_cluster_points", max_cluster_points, minimum=1)
        self.cluster_ids: np.ndarray | None = None

    def query(self, n: int) -> np.ndarray:
        if self.cluster_ids is None:
            pool = self.get_embeddings(self.dataset.get_inputs(np.arange(self.dataset.n_pool)))
            self.cluster_ids = average_linkage_clusters(
                pool, self.rng, self.distance_threshold, self.n_clusters,
                self.max_cluster_points,
            )
        idxs, data = self.candidates()
        scores = margin(self.predict_prob(data))
        self.last_scores = scores.numpy()
        k_m = min(len(idxs), max(n, int(np.ceil(self.margin_multiple * n))))
        uncertain = idxs[top_n(scores, k_m)]
        return uncertain[round_robin(self.cluster_ids[uncertain], n, self.rng)]
