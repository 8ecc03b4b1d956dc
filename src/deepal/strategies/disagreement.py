"""Variation ratio and mean standard deviation: disagreement between posterior samples.

Like BALD, both score how much the samples (MC-dropout passes or ensemble members) disagree,
so they need at least 2 samples; each is a
:class:`~deepal.strategies.posterior.PosteriorStrategy` with its own score.
"""

from __future__ import annotations

import torch

from deepal.scores.bayesian import mean_std, variation_ratio
from deepal.strategies.posterior import PosteriorStrategy


class VariationRatioDropout(PosteriorStrategy):
    """Highest variation ratio ``1 - f/K`` first, ``f`` the votes of the modal class among the
    ``K`` samples' predictions (Gal et al., 2017); ``n_drop=10`` by default."""

    min_samples = 2

    def sample_score(self, samples: torch.Tensor) -> torch.Tensor:
        return variation_ratio(samples)


class MeanSTDDropout(PosteriorStrategy):
    """Highest mean over classes of the samples' probability standard deviation first
    (Kampffmeyer et al., 2016); ``n_drop=10`` by default."""

    min_samples = 2

    def sample_score(self, samples: torch.Tensor) -> torch.Tensor:
        return mean_std(samples)
