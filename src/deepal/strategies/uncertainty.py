"""Uncertainty sampling: least confidence, margin and entropy, with or without MC dropout.

One mechanism serves all six strategies: each is a
:class:`~deepal.strategies.posterior.PosteriorStrategy` with the :class:`UncertaintySampling`
mixin, whose score is a function of the mean of the posterior samples (the softmax itself,
the mean of ``n_drop`` MC-dropout samples, or an ensemble's mean). A concrete strategy only
names its score and its default ``n_drop`` (0: the softmax; 10 for the dropout variants, as
in DeepAL).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch.utils.data import Dataset

from deepal.nets.posterior import PosteriorEstimate
from deepal.scores import uncertainty
from deepal.strategies.posterior import PosteriorStrategy, check_n_drop

__all__ = [
    "EntropySampling", "EntropySamplingDropout", "LeastConfidence", "LeastConfidenceDropout",
    "MarginSampling", "MarginSamplingDropout", "UncertaintySampling", "check_n_drop",
]


class UncertaintySampling:
    """Mixin of a :class:`~deepal.strategies.posterior.PosteriorStrategy`: score the mean of
    the posterior samples with :attr:`score`.

    Parameters (of the strategy)
    ----------------------------
    n_drop:
        0 (the default, :attr:`default_n_drop`) uses the deterministic softmax;
        ``n_drop > 0`` uses the mean of ``n_drop`` MC-dropout samples.
    posterior, n_members, acquisition, beta:
        As for :class:`~deepal.strategies.posterior.PosteriorStrategy`, by keyword:
        ``posterior="ensemble"`` scores the mean of ``n_members`` networks.

    Attributes
    ----------
    score:
        Function from probabilities ``(N, C)`` to scores ``(N,)``, higher = more informative,
        set by each strategy as a ``staticmethod``.

    Examples
    --------
    A strategy of your own on the mean probabilities::

        class SmallestTop(UncertaintySampling, PosteriorStrategy):
            score = staticmethod(lambda p: -p.max(dim=1).values)
    """

    score: ClassVar[staticmethod[[torch.Tensor], torch.Tensor]]
    default_n_drop: ClassVar[int] = 0
    posterior_estimate: PosteriorEstimate

    def sample_score(self, samples: torch.Tensor) -> torch.Tensor:
        """:attr:`score` of the mean of the samples ``(K, B, C)``."""
        return self.score(samples.mean(dim=0))

    def posterior(self, data: Dataset) -> torch.Tensor:
        """Class probabilities ``(N, C)`` of ``data``: the mean of the posterior samples."""
        return self.posterior_estimate.mean(data)


class LeastConfidence(UncertaintySampling, PosteriorStrategy):
    """Lowest top-class probability first (score ``1 - max p``).

    Parameters
    ----------
    dataset, net, n_drop, posterior, n_members, acquisition, beta, **kwargs:
        As for :class:`~deepal.strategies.posterior.PosteriorStrategy`.

    Examples
    --------
    >>> import numpy as np
    >>> import deepal
    >>> from deepal.nets import MLP
    >>> X = np.random.default_rng(0).normal(size=(60, 4)).astype("float32")
    >>> data = deepal.Data(X, np.arange(60) % 3)
    >>> first = data.initialize_labels(12, random_state=0)
    >>> net = deepal.Net(lambda: MLP(n_features=4, n_classes=3), {"n_epoch": 2}, device="cpu")
    >>> strategy = deepal.LeastConfidence(data, net, random_state=0)
    >>> strategy.train()
    >>> picked = strategy.query(5)
    >>> len(set(picked.tolist())), bool(data.labeled_idxs[picked].any())
    (5, False)
    """

    score = staticmethod(uncertainty.least_confidence)


class MarginSampling(UncertaintySampling, PosteriorStrategy):
    """Smallest gap between the two most probable classes first.

    Parameters
    ----------
    dataset, net, n_drop, posterior, n_members, acquisition, beta, **kwargs:
        As for :class:`~deepal.strategies.posterior.PosteriorStrategy`.

    Examples
    --------
    >>> import numpy as np
    >>> import deepal
    >>> from deepal.nets import MLP
    >>> X = np.random.default_rng(0).normal(size=(60, 4)).astype("float32")
    >>> data = deepal.Data(X, np.arange(60) % 3)
    >>> first = data.initialize_labels(12, random_state=0)
    >>> net = deepal.Net(lambda: MLP(n_features=4, n_classes=3), {"n_epoch": 2}, device="cpu")
    >>> strategy = deepal.MarginSampling(data, net, random_state=0)
    >>> strategy.train()
    >>> picked = strategy.query(5)
    >>> len(set(picked.tolist())), bool(data.labeled_idxs[picked].any())
    (5, False)
    """

    score = staticmethod(uncertainty.margin)


class EntropySampling(UncertaintySampling, PosteriorStrategy):
    """Highest predictive entropy first.

    Parameters
    ----------
    dataset, net, n_drop, posterior, n_members, acquisition, beta, **kwargs:
        As for :class:`~deepal.strategies.posterior.PosteriorStrategy`.

    Examples
    --------
    >>> import numpy as np
    >>> import deepal
    >>> from deepal.nets import MLP
    >>> X = np.random.default_rng(0).normal(size=(60, 4)).astype("float32")
    >>> data = deepal.Data(X, np.arange(60) % 3)
    >>> first = data.initialize_labels(12, random_state=0)
    >>> net = deepal.Net(lambda: MLP(n_features=4, n_classes=3), {"n_epoch": 2}, device="cpu")
    >>> strategy = deepal.EntropySampling(data, net, random_state=0)
    >>> strategy.train()
    >>> picked = strategy.query(5)
    >>> len(set(picked.tolist())), bool(data.labeled_idxs[picked].any())
    (5, False)
    """

    score = staticmethod(uncertainty.entropy)


class LeastConfidenceDropout(UncertaintySampling, PosteriorStrategy):
    """:class:`LeastConfidence` on MC-dropout probabilities (``n_drop=10``).

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
    >>> strategy = deepal.LeastConfidenceDropout(data, net, random_state=0)
    >>> strategy.train()
    >>> picked = strategy.query(5)
    >>> len(set(picked.tolist())), bool(data.labeled_idxs[picked].any())
    (5, False)
    """

    score = staticmethod(uncertainty.least_confidence)
    default_n_drop = 10


class MarginSamplingDropout(UncertaintySampling, PosteriorStrategy):
    """:class:`MarginSampling` on MC-dropout probabilities (``n_drop=10``).

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
    >>> strategy = deepal.MarginSamplingDropout(data, net, random_state=0)
    >>> strategy.train()
    >>> picked = strategy.query(5)
    >>> len(set(picked.tolist())), bool(data.labeled_idxs[picked].any())
    (5, False)
    """

    score = staticmethod(uncertainty.margin)
    default_n_drop = 10


class EntropySamplingDropout(UncertaintySampling, PosteriorStrategy):
    """:class:`EntropySampling` on MC-dropout probabilities (``n_drop=10``).

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
    >>> strategy = deepal.EntropySamplingDropout(data, net, random_state=0)
    >>> strategy.train()
    >>> picked = strategy.query(5)
    >>> len(set(picked.tolist())), bool(data.labeled_idxs[picked].any())
    (5, False)
    """

    score = staticmethod(uncertainty.entropy)
    default_n_drop = 10
