"""Variation ratio and mean standard deviation: disagreement between posterior samples.

Like BALD, both score how much the samples (MC-dropout passes or ensemble members) disagree,
so they need at least 2 samples; each is :class:`BALDDropout`'s mechanism with another score.
"""

from __future__ import annotations

import torch

from deepal.scores.bayesian import mean_std, variation_ratio
from deepal.strategies.bald import BALDDropout


class VariationRatioDropout(BALDDropout):
    """Highest variation ratio ``1 - f/K`` first, ``f`` the votes of the modal class among the
    ``K`` samples' predictions (Gal et al., 2017); ``n_drop=10`` by default."""

    def sample_score(self, samples: torch.Tensor) -> torch.Tensor:
        return variation_ratio(samples)


class MeanSTDDropout(BALDDropout):
    """Highest mean over classes of the samples' probability standard deviation first
    (Kampffmeyer et al., 2016); ``n_drop=10`` by default."""

    def sample_score(self, samples: torch.Tensor) -> torch.Tensor:
        return mean_std(samples)
