"""K-medians sampling: like k-means sampling, with L1 distances and coordinate-wise medians."""

from __future__ import annotations

import numpy as np

from deepal.scores.clustering import kmedians_centres, nearest_distinct
from deepal.strategies.base import Strategy


class KMediansSampling(Strategy):
    """Run k-medians with ``k = n`` on the unlabeled embeddings and pick the unlabeled example
    nearest (in L1) each centre (``n`` distinct examples).

    Parameters
    ----------
    dataset, net, random_state, max_candidates, embeddings_file:
        As for :class:`~deepal.strategies.base.Strategy`.

    Examples
    --------
    >>> import numpy as np
    >>> import deepal
    >>> from deepal.nets import MLP
    >>> X = np.random.default_rng(0).normal(size=(60, 4)).astype("float32")
    >>> data = deepal.Data(X, np.arange(60) % 3)
    >>> first = data.initialize_labels(12, random_state=0)
    >>> net = deepal.Net(lambda: MLP(n_features=4, n_classes=3), {"n_epoch": 2}, device="cpu")
    >>> strategy = deepal.KMediansSampling(data, net, random_state=0)
    >>> strategy.train()
    >>> picked = strategy.query(5)
    >>> len(set(picked.tolist())), bool(data.labeled_idxs[picked].any())
    (5, False)
    """

    def query(self, n: int) -> np.ndarray:
        idxs, data = self.candidates()
        embeddings = self.get_embeddings(data)
        centres = kmedians_centres(embeddings, n, self.rng)
        return idxs[nearest_distinct(embeddings, centres, metric="l1")]
