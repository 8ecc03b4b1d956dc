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
    ``K`` samples' predictions (Gal et al., 2017); ``n_drop=10`` by default.

    Parameters
    ----------
    dataset, net, n_drop, posterior, n_members, acquisition, beta, **kwargs:
        As for :class:`~deepal.strategies.posterior.PosteriorStrategy` (``n_drop=10`` by default).

    Examples
    --------
    >>> import numpy as np
    >>> import deepal
    >>> from deepal.nets import MLP
    >>> X = np.random.default_rng(0).normal(size=(60, 4)).astype("float32")
    >>> data = deepal.Data(X, np.arange(60) % 3)
    >>> first = data.initialize_labels(12, random_state=0)
    >>> net = deepal.Net(lambda: MLP(n_features=4, n_classes=3), {"n_epoch": 2}, device="cpu")
    >>> strategy = deepal.VariationRatioDropout(data, net, random_state=0)
    >>> strategy.train()
    >>> picked = strategy.query(5)
    >>> len(set(picked.tolist())), bool(data.labeled_idxs[picked].any())
    (5, False)
    """

    min_samples = 2

    def sample_score(self, samples: torch.Tensor) -> torch.Tensor:
        return variation_ratio(samples)


class MeanSTDDropout(PosteriorStrategy):
    """Highest mean over classes of the samples' probability standard deviation first
    (Kampffmeyer et al., 2016); ``n_drop=10`` by default.

    Parameters
    ----------
    dataset, net, n_drop, posterior, n_members, acquisition, beta, **kwargs:
        As for :class:`~deepal.strategies.posterior.PosteriorStrategy` (``n_drop=10`` by default).

    Examples
    --------
    >>> import numpy as np
    >>> import deepal
    >>> from deepal.nets import MLP
    >>> X = np.random.default_rng(0).normal(size=(60, 4)).astype("float32")
    >>> data = deepal.Data(X, np.arange(60) % 3)
    >>> first = data.initialize_labels(12, random_state=0)
    >>> net = deepal.Net(lambda: MLP(n_features=4, n_classes=3), {"n_epoch": 2}, device="cpu")
    >>> strategy = deepal.MeanSTDDropout(data, net, random_state=0)
    >>> strategy.train()
    >>> picked = strategy.query(5)
    >>> len(set(picked.tolist())), bool(data.labeled_idxs[picked].any())
    (5, False)
    """

    min_samples = 2

    def sample_score(self, samples: torch.Tensor) -> torch.Tensor:
        return mean_std(samples)
