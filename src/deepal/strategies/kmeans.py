"""K-means sampling: cluster the unlabeled embeddings into ``n`` groups, label one per group."""

from __future__ import annotations

import numpy as np

from deepal.scores.clustering import kmeans_centres, nearest_distinct
from deepal.strategies.base import Strategy


class KMeansSampling(Strategy):
    """Run k-means with ``k = n`` on the unlabeled embeddings and pick the unlabeled example
    nearest each centre (``n`` distinct examples)."""

    def query(self, n: int) -> np.ndarray:
        idxs, data = self.candidates()
        embeddings = self.embeddings_for_search(data)
        centres = kmeans_centres(embeddings, n, self.rng)
        return idxs[nearest_distinct(embeddings, centres, metric="sqeuclidean")]
