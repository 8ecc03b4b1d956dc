"""BALD with MC dropout (Gal et al., 2017): pick the examples the dropout samples disagree on."""

from __future__ import annotations

from typing import Any

import numpy as np

from deepal.data.pool import Data
from deepal.nets.net import Net
from deepal.scores.selection import top_n
from deepal.scores.uncertainty import bald_from_batches
from deepal.strategies.base import Strategy
from deepal.strategies.uncertainty import check_n_drop


class BALDDropout(Strategy):
    """Highest mutual information ``H(mean_k p_k) - mean_k H(p_k)`` first.

    The ``n_drop`` MC-dropout samples are reduced batch by batch, so memory stays
    ``O(N * C)`` rather than ``O(n_drop * N * C)``.

    Parameters
    ----------
    dataset, net, random_state, max_candidates:
        As for :class:`~deepal.strategies.base.Strategy` (the last two by keyword).
    n_drop:
        Number of MC-dropout samples (at least 2: with one sample BALD is always 0).
    """

    def __init__(
        self,
        dataset: Data,
        net: Net,
        n_drop: int = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(dataset, net, **kwargs)
        self.n_drop = check_n_drop(n_drop, minimum=2)

    def query(self, n: int) -> np.ndarray:
        idxs, data = self.candidates()
        _, scores = bald_from_batches(self.net.predict_prob_dropout_batches(data, self.n_drop))
        self.last_scores = scores.numpy()
        return idxs[top_n(scores, n)]
