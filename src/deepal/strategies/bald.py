"""BALD (Houlsby et al., 2011; Gal et al., 2017): pick the examples the posterior samples
disagree on."""

from __future__ import annotations

from typing import Any

import torch

from deepal.data.pool import Data
from deepal.nets.net import Net
from deepal.nets.posterior import DROPOUT_POSTERIORS
from deepal.scores.uncertainty import bald
from deepal.strategies.posterior import PosteriorStrategy
from deepal.strategies.uncertainty import check_n_drop


class BALDDropout(PosteriorStrategy):
    """Highest mutual information ``H(mean_k p_k) - mean_k H(p_k)`` first.

    The ``n_drop`` MC-dropout samples (or the ensemble's members) are reduced batch by batch,
    so memory stays ``O(N * C)`` rather than ``O(n_drop * N * C)``.

    Parameters
    ----------
    dataset, net, random_state, max_candidates:
        As for :class:`~deepal.strategies.base.Strategy` (the last two by keyword).
    n_drop:
        Number of MC-dropout samples (at least 2: with one sample BALD is always 0).
    posterior, n_members, acquisition, beta:
        As for :class:`~deepal.strategies.posterior.PosteriorStrategy`, by keyword.
    """

    min_samples = 2

    def __init__(
        self,
        dataset: Data,
        net: Net,
        n_drop: int = 10,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("posterior", self.default_posterior) in (None, *DROPOUT_POSTERIORS):
            check_n_drop(n_drop, minimum=2)
        super().__init__(dataset, net, n_drop=n_drop, **kwargs)

    def sample_score(self, samples: torch.Tensor) -> torch.Tensor:
        return bald(samples)
