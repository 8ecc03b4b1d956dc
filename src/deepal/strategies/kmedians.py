"""K-medians sampling: like k-means sampling, with L1 distances and coordinate-wise medians."""

from __future__ import annotations

import numpy as np

from deepal.scores.clustering import kmedians_centres, nearest_distinct
from deepal.strategies.base import Strategy


class KMediansSampling(Strategy):
    """Run k-medians with ``k = n`` on the unlabeled embeddings and pick the unlabeled example
    nearest (in L1) each centre (``n`` distinct examples)."""

    def query(self, n: int) -> np.ndarray:
        idxs, data = self.candidates()
        embeddings = self.get_embeddings(data)
        centres = kmedians_centres(embeddings, n, self.rng)
        return idxs[nearest_distinct(embeddings, centres, metric="l1")]
