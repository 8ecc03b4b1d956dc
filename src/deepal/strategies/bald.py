"""BALD (Houlsby et al., 2011; Gal et al., 2017): pick the examples the posterior samples
disagree on."""

from __future__ import annotations

from typing import ClassVar

import torch

from deepal.scores.uncertainty import bald
from deepal.strategies.posterior import PosteriorStrategy


class BALDScore:
    """Mixin of a :class:`~deepal.strategies.posterior.PosteriorStrategy`: the BALD score of
    the samples, which needs at least two of them (with one it is always 0)."""

    min_samples: ClassVar[int] = 2

    def sample_score(self, samples: torch.Tensor) -> torch.Tensor:
        """Mutual information ``H(mean_k p_k) - mean_k H(p_k)`` of the samples ``(K, B, C)``."""
        return bald(samples)


class BALDDropout(BALDScore, PosteriorStrategy):
    """Highest mutual information ``H(mean_k p_k) - mean_k H(p_k)`` first.

    The ``n_drop`` MC-dropout samples (or the ensemble's members) are reduced batch by batch,
    so memory stays ``O(N * C)`` rather than ``O(n_drop * N * C)``.

    Parameters
    ----------
    dataset, net, random_state, max_candidates:
        As for :class:`~deepal.strategies.base.Strategy` (the last two by keyword).
    n_drop:
        Number of MC-dropout samples (default 10; at least 2: with one sample BALD is
        always 0).
    posterior, n_members, acquisition, beta:
        As for :class:`~deepal.strategies.posterior.PosteriorStrategy`, by keyword.

    Examples
    --------
    >>> import numpy as np
    >>> import deepal
    >>> from deepal.nets import MLP
    >>> X = np.random.default_rng(0).normal(size=(60, 4)).astype("float32")
    >>> data = deepal.Data(X, np.arange(60) % 3)
    >>> first = data.initialize_labels(12, random_state=0)
    >>> net = deepal.Net(lambda: MLP(n_features=4, n_classes=3), {"n_epoch": 2}, device="cpu")
    >>> strategy = deepal.BALDDropout(data, net, random_state=0)
    >>> strategy.train()
    >>> picked = strategy.query(5)
    >>> len(set(picked.tolist())), bool(data.labeled_idxs[picked].any())
    (5, False)
    """
