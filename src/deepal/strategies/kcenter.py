"""Core-set selection by greedy k-center (Sener & Savarese, 2018)."""

from __future__ import annotations

import numpy as np

from deepal.data.pool import Data
from deepal.nets.net import Net
from deepal.scores.distances import DEFAULT_CHUNK_SIZE, k_center_greedy
from deepal.strategies.base import Strategy


class KCenterGreedy(Strategy):
    """Repeatedly pick the unlabeled example farthest from every labeled or picked one.

    Distances are between the network's embeddings of the whole pool. Without any labeled
    example (cold start, with a net trained elsewhere) the first pick is drawn by ``self.rng``.

    Parameters
    ----------
    dataset, net, random_state:
        As for :class:`~deepal.strategies.base.Strategy`.
    chunk_size:
        Block size of the distance computation (memory ``O(chunk_size ** 2)``).
    """

    def __init__(
        self,
        dataset: Data,
        net: Net,
        random_state: int | np.random.Generator | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        super().__init__(dataset, net, random_state)
        self.chunk_size = chunk_size

    def query(self, n: int) -> np.ndarray:
        labeled, data = self.dataset.get_train_data()
        embeddings = self.get_embeddings(data)
        # Positions in the embeddings are pool indices: get_train_data covers the whole pool.
        return k_center_greedy(embeddings, labeled, n, rng=self.rng, chunk_size=self.chunk_size)
