"""The robust (outlier-tolerant) core set of Sener & Savarese (2018), without a MIP solver."""

from __future__ import annotations

from typing import Any

import numpy as np

from deepal.config.arguments import integer, optional_integer
from deepal.data.pool import Data
from deepal.nets.net import Net
from deepal.scores.coverage import MAX_EDGES
from deepal.scores.distances import DEFAULT_CHUNK_SIZE
from deepal.scores.robust_kcenter import robust_k_center
from deepal.strategies.base import Strategy


class KCenterGreedyRobust(Strategy):
    """Core set that may leave ``n_outliers`` examples uncovered, so that isolated outliers
    do not each take a label.

    Greedy k-center, then a binary search on the covering radius whose feasibility test is
    greedy maximum coverage instead of the paper's MIP (see
    :mod:`deepal.scores.robust_kcenter` for exactly what is computed). Cost: one ball graph
    of the labeled examples and candidates at the greedy radius, ``O(N^2 d)`` time and
    memory the number of edges (capped by ``max_edges``): on a large pool set
    ``max_candidates``.

    Parameters
    ----------
    dataset, net, random_state, max_candidates:
        As for :class:`~deepal.strategies.base.Strategy` (the last two by keyword).
    n_outliers:
        Examples allowed to stay uncovered; ``None`` (default) is 0.1% of the examples
        considered, at least 1.
    n_steps:
        Binary-search steps on the radius.
    chunk_size, max_edges:
        Block size of the distance computation and the cap on the graph's edges.

    Attributes
    ----------
    last_radius:
        The covering radius (allowing the outliers) reached by the last query.

    Examples
    --------
    >>> import numpy as np
    >>> import deepal
    >>> from deepal.nets import MLP
    >>> X = np.random.default_rng(0).normal(size=(60, 4)).astype("float32")
    >>> data = deepal.Data(X, np.arange(60) % 3)
    >>> first = data.initialize_labels(12, random_state=0)
    >>> net = deepal.Net(lambda: MLP(n_features=4, n_classes=3), {"n_epoch": 2}, device="cpu")
    >>> strategy = deepal.KCenterGreedyRobust(data, net, random_state=0)
    >>> strategy.train()
    >>> picked = strategy.query(5)
    >>> len(set(picked.tolist())), bool(data.labeled_idxs[picked].any())
    (5, False)
    """

    state_attrs = (*Strategy.state_attrs, "last_radius")

    def __init__(
        self,
        dataset: Data,
        net: Net,
        n_outliers: int | None = None,
        n_steps: int = 12,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        max_edges: int = MAX_EDGES,
        **kwargs: Any,
    ) -> None:
        super().__init__(dataset, net, **kwargs)
        self.n_outliers = optional_integer("n_outliers", n_outliers, minimum=0)
        self.n_steps = integer("n_steps", n_steps, minimum=0)
        self.chunk_size = integer("chunk_size", chunk_size, minimum=1)
        self.max_edges = integer("max_edges", max_edges, minimum=1)
        self.last_radius: float | None = None

    def query(self, n: int) -> np.ndarray:
        idxs = np.union1d(np.flatnonzero(self.dataset.labeled_idxs), self.candidate_idxs())
        embeddings = self.get_embeddings(self.dataset.get_inputs(idxs))
        labeled = self.dataset.labeled_idxs[idxs]
        n_outliers = self.n_outliers if self.n_outliers is not None else max(1, len(idxs) // 1000)
        picks, self.last_radius = robust_k_center(
            embeddings, labeled, n, n_outliers, rng=self.rng, n_steps=self.n_steps,
            chunk_size=self.chunk_size, max_edges=self.max_edges,
        )
        return idxs[picks]
