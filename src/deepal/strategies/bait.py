"""BAIT (Ash et al., 2021), classification: greedy Fisher-information batches."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from deepal.config.arguments import integer, number
from deepal.data.pool import Data
from deepal.nets.net import Net
from deepal.scores.bait import bait_select, fisher_sum
from deepal.strategies.badge import warn_unless_last_layer_input
from deepal.strategies.base import Strategy


class BAIT(Strategy):
    """Pick the batch that best covers the pool's Fisher information in the last layer:
    minimise ``tr((lambda I + mean Fisher of labeled + batch)^{-1} F_pool)``, greedily
    forward to ``oversample * n`` examples, then backward to ``n`` (see
    :mod:`deepal.scores.bait`).

    The Fisher information uses the last-layer gradients of the network (with the same
    assumption as :class:`~deepal.strategies.badge.BADGE`: the embedding is the input of the
    last linear layer), in expectation over each example's predicted class distribution.
    ``F_pool`` is the mean over the labeled examples and the candidates.

    Cost: ``C d x C d`` matrices (``C`` classes, ``d`` embedding size: 500 x 500 on the
    built-in CNNs), ``O(N (C d)^2)`` to start and ``O(N C^2 d + C (C d)^2)`` for each of the
    ``(oversample + 1) n`` greedy steps on ``N`` candidates; memory ``O(N (C^2 + d))``, never
    an ``N x C d x C`` array (see :mod:`deepal.scores.bait`). Measured on a busy 2-core CPU,
    ``C d = 500``: 2,000 candidates, n = 100: 6 s; 10,000 candidates, n = 100: 45 s. The time
    grows as ``N * n``, so BAIT scores a random subset of ``max_candidates`` unlabeled
    examples at each query, 2,000 by default (``None`` for the whole pool), and embeddings
    wider than ``max_fisher_dim / C`` are projected on their top principal directions (an
    approximation: the gradient of a narrower last layer).

    Parameters
    ----------
    dataset, net, random_state:
        As for :class:`~deepal.strategies.base.Strategy`.
    max_candidates:
        As for :class:`~deepal.strategies.base.Strategy`, but 2,000 by default.
    lamb:
        Regularisation ``lambda`` (the paper's 1).
    oversample:
        Forward picks per final pick (the paper's 2).
    max_fisher_dim:
        Largest ``C d`` used as is.

    Examples
    --------
    >>> import numpy as np
    >>> import deepal
    >>> from deepal.nets import MLP
    >>> X = np.random.default_rng(0).normal(size=(60, 4)).astype("float32")
    >>> data = deepal.Data(X, np.arange(60) % 3)
    >>> first = data.initialize_labels(12, random_state=0)
    >>> net = deepal.Net(lambda: MLP(n_features=4, n_classes=3), {"n_epoch": 2}, device="cpu")
    >>> strategy = deepal.BAIT(data, net, random_state=0)
    >>> strategy.train()
    >>> picked = strategy.query(5)
    >>> len(set(picked.tolist())), bool(data.labeled_idxs[picked].any())
    (5, False)
    """

    def __init__(
        self,
        dataset: Data,
        net: Net,
        lamb: float = 1.0,
        oversample: int = 2,
        max_fisher_dim: int = 1024,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("max_candidates", 2000)
        super().__init__(dataset, net, **kwargs)
        self.lamb = number("lamb", lamb, above=0)
        self.oversample = integer("oversample", oversample, minimum=1)
        self.max_fisher_dim = integer("max_fisher_dim", max_fisher_dim, minimum=1)

    def query(self, n: int) -> np.ndarray:
        candidates = self.candidate_idxs()
        idxs = np.union1d(np.flatnonzero(self.dataset.labeled_idxs), candidates)
        data = self.dataset.get_inputs(idxs)
        warn_unless_last_layer_input(self.net, data)
        probs, embeddings = self.predict_prob(data), self.get_embeddings(data).double()
        embeddings = self._narrow(embeddings, probs.shape[1])
        labeled = torch.as_tensor(self.dataset.labeled_idxs[idxs])
        pool_fisher = fisher_sum(probs, embeddings) / len(idxs)
        labeled_fisher = fisher_sum(probs[labeled], embeddings[labeled])
        picks = bait_select(probs[~labeled], embeddings[~labeled], pool_fisher, labeled_fisher,
                            int(labeled.sum()), n, self.lamb, self.oversample,
                            getattr(self.net, "device", "cpu"))
        return idxs[~labeled.numpy()][picks]

    def _narrow(self, embeddings: torch.Tensor, n_classes: int) -> torch.Tensor:
        """Project on the top ``max_fisher_dim // C`` principal directions of ``h h^T`` when
        ``C d`` is larger than ``max_fisher_dim``."""
        keep = max(1, self.max_fisher_dim // n_classes)
        if embeddings.shape[1] <= keep:
            return embeddings
        _, vectors = torch.linalg.eigh(embeddings.T @ embeddings)  # ascending eigenvalues
        return embeddings @ vectors[:, -keep:]
