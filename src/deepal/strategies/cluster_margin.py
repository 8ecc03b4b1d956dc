"""Cluster-Margin (Citovsky et al., 2021): lowest margins, spread round-robin over clusters."""

from __future__ import annotations

from typing import Any

import numpy as np

from deepal.data.pool import Data
from deepal.errors import DeepALError
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
        if not margin_multiple >= 1:
            raise DeepALError(f"margin_multiple must be >= 1, got {margin_multiple!r}")
        if distance_threshold is not None and not distance_threshold >= 0:
            raise DeepALError(f"distance_threshold must be >= 0, got {distance_threshold!r}")
        for name, value in (("n_clusters", n_clusters), ("max_cluster_points",
                                                          max_cluster_points)):
            if value is not None and (isinstance(value, bool)
                                      or not isinstance(value, (int, np.integer)) or value < 1):
                raise DeepALError(f"{name} must be an integer >= 1, got {value!r}")
        self.margin_multiple = margin_multiple
        self.distance_threshold, self.n_clusters = distance_threshold, n_clusters
        self.max_cluster_points = max_cluster_points
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
