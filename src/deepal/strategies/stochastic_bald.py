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
    """Sample the batch with probability ∝ ``BALD ** beta`` (``log BALD + Gumbel / beta``)."""

    default_acquisition = "power"


class SoftmaxBALD(BALDScore, PosteriorStrategy):
    """Sample the batch with probability ∝ ``exp(beta * BALD)``."""

    default_acquisition = "softmax"


class SoftRankBALD(BALDScore, PosteriorStrategy):
    """Sample the batch with probability ∝ ``rank ** -beta`` (rank 1 = highest BALD)."""

    default_acquisition = "softrank"
