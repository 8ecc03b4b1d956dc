"""Random sampling: the baseline every strategy must beat."""

from __future__ import annotations

import numpy as np

from deepal.strategies.base import Strategy


class RandomSampling(Strategy):
    """Pick ``n`` unlabeled examples uniformly at random. Needs no trained model.

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
    >>> strategy = deepal.RandomSampling(data, net, random_state=0)
    >>> strategy.train()
    >>> picked = strategy.query(5)
    >>> len(set(picked.tolist())), bool(data.labeled_idxs[picked].any())
    (5, False)
    """

    needs_model = False

    def query(self, n: int) -> np.ndarray:
        return self.rng.choice(self.candidate_idxs(), size=n, replace=False)
