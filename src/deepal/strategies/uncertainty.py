"""Uncertainty sampling: least confidence, margin and entropy, with or without MC dropout.

One mechanism serves all six strategies: :class:`UncertaintySampling` is a
:class:`~deepal.strategies.posterior.PosteriorStrategy` whose score is a function of the mean
of the posterior samples (the softmax itself, the mean of ``n_drop`` MC-dropout samples, or an
ensemble's mean). A concrete strategy only names its score and its default ``n_drop``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch.utils.data import Dataset

from deepal.data.pool import Data
from deepal.errors import DeepALError
from deepal.nets.net import Net
from deepal.scores import uncertainty
from deepal.strategies.posterior import PosteriorStrategy


def check_n_drop(n_drop: int, minimum: int) -> int:
    """``n_drop`` as an int, or a :class:`DeepALError` if it is not an integer >= ``minimum``."""
    if isinstance(n_drop, bool) or not isinstance(n_drop, (int, np.integer)) or n_drop < minimum:
        raise DeepALError(f"n_drop must be an integer >= {minimum}, got {n_drop!r}")
    return int(n_drop)


class UncertaintySampling(PosteriorStrategy):
    """Pick the unlabeled examples whose predicted class probabilities score highest.

    Parameters
    ----------
    dataset, net, random_state, max_candidates:
        As for :class:`~deepal.strategies.base.Strategy` (the last two by keyword).
    n_drop:
        0 uses the deterministic softmax; ``n_drop > 0`` uses the mean of ``n_drop``
        MC-dropout samples (dropout layers sampling at prediction time).
    posterior, n_members, acquisition, beta:
        As for :class:`~deepal.strategies.posterior.PosteriorStrategy`, by keyword:
        ``posterior="ensemble"`` scores the mean of ``n_members`` networks.

    Attributes
    ----------
    score:
        Function from probabilities ``(N, C)`` to scores ``(N,)``, higher = more informative,
        set by each subclass as a ``staticmethod``.
    """

    score: ClassVar[staticmethod[[torch.Tensor], torch.Tensor]]

    def __init__(
        self,
        dataset: Data,
        net: Net,
        n_drop: int = 0,
        **kwargs: Any,
    ) -> None:
        check_n_drop(n_drop, minimum=0)
        super().__init__(dataset, net, n_drop=n_drop, **kwargs)

    def sample_score(self, samples: torch.Tensor) -> torch.Tensor:
        return self.score(samples.mean(dim=0))

    def posterior(self, data: Dataset) -> torch.Tensor:
        """Class probabilities ``(N, C)`` of ``data``: the mean of the posterior samples."""
        return self.posterior_estimate.mean(data)


class LeastConfidence(UncertaintySampling):
    """Lowest top-class probability first (score ``1 - max p``)."""

    score = staticmethod(uncertainty.least_confidence)


class MarginSampling(UncertaintySampling):
    """Smallest gap between the two most probable classes first."""

    score = staticmethod(uncertainty.margin)


class EntropySampling(UncertaintySampling):
    """Highest predictive entropy first."""

    score = staticmethod(uncertainty.entropy)


class _MCDropout(UncertaintySampling):
    """Uncertainty sampling on the mean of 10 MC-dropout samples by default (as in DeepAL)."""

    def __init__(
        self,
        dataset: Data,
        net: Net,
        n_drop: int = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(dataset, net, n_drop=n_drop, **kwargs)


class LeastConfidenceDropout(_MCDropout, LeastConfidence):
    """:class:`LeastConfidence` on MC-dropout probabilities (``n_drop=10``)."""


class MarginSamplingDropout(_MCDropout, MarginSampling):
    """:class:`MarginSampling` on MC-dropout probabilities (``n_drop=10``)."""


class EntropySamplingDropout(_MCDropout, EntropySampling):
    """:class:`EntropySampling` on MC-dropout probabilities (``n_drop=10``)."""
