"""Core-set selection by greedy k-center (Sener & Savarese, 2018)."""

from __future__ import annotations

from typing import Any

import numpy as np

from deepal.config.arguments import integer
from deepal.data.pool import Data
from deepal.nets.net import Net
from deepal.scores.distances import DEFAULT_CHUNK_SIZE
from deepal.scores.kcenter import k_center_greedy
from deepal.strategies.base import Strategy


class KCenterGreedy(Strategy):
    """Repeatedly pick the unlabeled example farthest from every labeled or picked one.

    Distances are between the network's embeddings of the whole pool. Without any labeled
    example (cold start, with a net trained elsewhere) the first pick is drawn by ``self.rng``.

    Parameters
    ----------
    dataset, net, random_state, max_candidates:
        As for :class:`~deepal.strategies.base.Strategy` (the last two by keyword).
    chunk_size:
        Block size of the distance computation (memory ``O(chunk_size ** 2)``).

    Examples
    --------
    >>> import numpy as np
    >>> import deepal
    >>> from deepal.nets import MLP
    >>> X = np.random.default_rng(0).normal(size=(60, 4)).astype("float32")
    >>> data = deepal.Data(X, np.arange(60) % 3)
    >>> first = data.initialize_labels(12, random_state=0)
    >>> net = deepal.Net(lambda: MLP(n_features=4, n_classes=3), {"n_epoch": 2}, device="cpu")
    >>> strategy = deepal.KCenterGreedy(data, net, random_state=0)
    >>> strategy.train()
    >>> picked = strategy.query(5)
    >>> len(set(picked.tolist())), bool(data.labeled_idxs[picked].any())
    (5, False)
    """

    def __init__(
        self,
        dataset: Data,
        net: Net,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        **kwargs: Any,
    ) -> None:
        super().__init__(dataset, net, **kwargs)
        self.chunk_size = integer("chunk_size", chunk_size, minimum=1)

    def query(self, n: int) -> np.ndarray:
        # Distances count to every labeled example, but only candidates can be picked.
        idxs = np.union1d(np.flatnonzero(self.dataset.labeled_idxs), self.candidate_idxs())
        embeddings = self.embeddings_for_search(self.dataset.get_inputs(idxs))
        labeled = self.dataset.labeled_idxs[idxs]
        picked = k_center_greedy(embeddings, labeled, n, rng=self.rng, chunk_size=self.chunk_size)
        return idxs[picked]
