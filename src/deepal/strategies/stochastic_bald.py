"""PowerBALD, SoftmaxBALD and SoftRankBALD (Kirsch et al., 2023): BALD scores, batch sampled.

Each is BALD (:class:`~deepal.strategies.bald.BALDScore` on a
:class:`~deepal.strategies.posterior.PosteriorStrategy`) with another default ``acquisition``;
the Gumbel-top-``n`` sampling lives in :mod:`deepal.scores.stochastic` and works on every
:class:`~deepal.strategies.posterior.PosteriorStrategy` (``EntropySampling(...,
acquisition="softrank")`` is soft-rank entropy). ``beta`` (default 1) is the coldness;
``random_state`` seeds the noise.
"""

from __future__ import annotations

from deepal.strategies.bald import BALDScore
from deepal.strategies.posterior import PosteriorStrategy


class PowerBALD(BALDScore, PosteriorStrategy):
    """Sample the batch with probability ∝ ``BALD ** beta`` (``log BALD + Gumbel / beta``).

    Parameters
    ----------
    dataset, net, n_drop, posterior, n_members, acquisition, beta, **kwargs:
        As for :class:`~deepal.strategies.posterior.PosteriorStrategy`,
        with ``acquisition="power"`` by default.

    Examples
    --------
    >>> import numpy as np
    >>> import deepal
    >>> from deepal.nets import MLP
    >>> X = np.random.default_rng(0).normal(size=(60, 4)).astype("float32")
    >>> data = deepal.Data(X, np.arange(60) % 3)
    >>> first = data.initialize_labels(12, random_state=0)
    >>> net = deepal.Net(lambda: MLP(n_features=4, n_classes=3), {"n_epoch": 2}, device="cpu")
    >>> strategy = deepal.PowerBALD(data, net, random_state=0)
    >>> strategy.train()
    >>> picked = strategy.query(5)
    >>> len(set(picked.tolist())), bool(data.labeled_idxs[picked].any())
    (5, False)
    """

    default_acquisition = "power"


class SoftmaxBALD(BALDScore, PosteriorStrategy):
    """Sample the batch with probability ∝ ``exp(beta * BALD)``.

    Parameters
    ----------
    dataset, net, n_drop, posterior, n_members, acquisition, beta, **kwargs:
        As for :class:`~deepal.strategies.posterior.PosteriorStrategy`,
        with ``acquisition="softmax"`` by default.

    Examples
    --------
    >>> import numpy as np
    >>> import deepal
    >>> from deepal.nets import MLP
    >>> X = np.random.default_rng(0).normal(size=(60, 4)).astype("float32")
    >>> data = deepal.Data(X, np.arange(60) % 3)
    >>> first = data.initialize_labels(12, random_state=0)
    >>> net = deepal.Net(lambda: MLP(n_features=4, n_classes=3), {"n_epoch": 2}, device="cpu")
    >>> strategy = deepal.SoftmaxBALD(data, net, random_state=0)
    >>> strategy.train()
    >>> picked = strategy.query(5)
    >>> len(set(picked.tolist())), bool(data.labeled_idxs[picked].any())
    (5, False)
    """

    default_acquisition = "softmax"


class SoftRankBALD(BALDScore, PosteriorStrategy):
    """Sample the batch with probability ∝ ``rank ** -beta`` (rank 1 = highest BALD).

    Parameters
    ----------
    dataset, net, n_drop, posterior, n_members, acquisition, beta, **kwargs:
        As for :class:`~deepal.strategies.posterior.PosteriorStrategy`,
        with ``acquisition="softrank"`` by default.

    Examples
    --------
    >>> import numpy as np
    >>> import deepal
    >>> from deepal.nets import MLP
    >>> X = np.random.default_rng(0).normal(size=(60, 4)).astype("float32")
    >>> data = deepal.Data(X, np.arange(60) % 3)
    >>> first = data.initialize_labels(12, random_state=0)
    >>> net = deepal.Net(lambda: MLP(n_features=4, n_classes=3), {"n_epoch": 2}, device="cpu")
    >>> strategy = deepal.SoftRankBALD(data, net, random_state=0)
    >>> strategy.train()
    >>> picked = strategy.query(5)
    >>> len(set(picked.tolist())), bool(data.labeled_idxs[picked].any())
    (5, False)
    """

    default_acquisition = "softrank"
