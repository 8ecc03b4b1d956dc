"""One mechanism for every strategy that scores posterior samples.

:class:`PosteriorStrategy` wires three interchangeable parts:

- a posterior estimate (:mod:`deepal.nets.posterior`): the softmax, MC dropout (fresh or
  consistent masks) or a deep ensemble, chosen with ``posterior=`` (and ``n_drop`` /
  ``n_members``);
- a score of each batch of samples ``(K, B, C) -> (B,)``, the subclass's :meth:`sample_score`;
- a batch selector, chosen with ``acquisition=``: the top ``n`` scores, or a stochastic batch
  (``"power"``, ``"softmax"``, ``"softrank"``, Kirsch et al. 2023) with coldness ``beta``.

So ``BALDDropout(data, net, posterior="ensemble", n_members=5, acquisition="power")`` is
PowerBALD on a deep ensemble, with no new class. A concrete strategy subclasses
:class:`PosteriorStrategy` directly and declares what differs: its score
(:meth:`~PosteriorStrategy.sample_score`, or a mixin such as
:class:`~deepal.strategies.uncertainty.UncertaintySampling` that provides it), the fewest
samples it can use, its default ``n_drop``, posterior and acquisition.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch.utils.data import Dataset

from deepal.config.arguments import integer, number
from deepal.data.pool import Data
from deepal.errors import DeepALError
from deepal.nets.estimates import get_posterior
from deepal.nets.net import Net
from deepal.nets.posterior import DROPOUT_POSTERIORS, PosteriorEstimate
from deepal.scores.stochastic import ACQUISITIONS, stochastic_top_n
from deepal.state import Stateful
from deepal.strategies.base import Strategy


def check_n_drop(n_drop: int, minimum: int) -> int:
    """``n_drop`` as an int, or a :class:`DeepALError` if it is not an integer >= ``minimum``."""
    return integer("n_drop", n_drop, minimum)


class PosteriorStrategy(Strategy):
    """Pick the unlabeled examples whose posterior samples score highest.

    Parameters
    ----------
    dataset, net, random_state, max_candidates:
        As for :class:`~deepal.strategies.base.Strategy` (the last two by keyword).
    n_drop:
        Number of MC-dropout samples; with ``posterior=None``, 0 means the softmax.
        ``None`` takes the class's :attr:`default_n_drop`.
    posterior:
        ``"softmax"``, ``"mc_dropout"``, ``"consistent_mc_dropout"`` or ``"ensemble"``;
        ``None`` takes the class's :attr:`default_posterior`, and where that is ``None`` too,
        follows ``n_drop``. Consistent masks are drawn from the strategy's ``rng`` at every
        query, so ``random_state`` fixes them.
    n_members:
        Networks in the ensemble (``posterior="ensemble"``); :meth:`train` trains them all.
    acquisition:
        ``"top_n"`` (default) or a stochastic batch: ``"power"``, ``"softmax"``, ``"softrank"``.
    beta:
        Coldness of a stochastic acquisition (``inf`` is top-n).

    Attributes
    ----------
    posterior_estimate:
        The :class:`~deepal.nets.posterior.PosteriorEstimate` in use.
    min_samples:
        The fewest samples per example the score can use (2 for disagreement scores).
    default_posterior:
        The posterior used when none is given (``None``: follow ``n_drop``).
    default_n_drop:
        The ``n_drop`` used when none is given.
    default_acquisition:
        The acquisition used when none is given.
    """

    min_samples: ClassVar[int] = 1
    default_posterior: ClassVar[str | None] = None
    default_acquisition: ClassVar[str] = "top_n"
    default_n_drop: ClassVar[int] = 10

    def __init__(
        self,
        dataset: Data,
        net: Net,
        n_drop: int | None = None,
        *,
        posterior: str | None = None,
        n_members: int = 5,
        acquisition: str | None = None,
        beta: float = 1.0,
        **kwargs: Any,
    ) -> None:
        if posterior is None:
            posterior = self.default_posterior
        n_drop = self.default_n_drop if n_drop is None else n_drop
        # A disagreement score needs two dropout samples; a softmax (n_drop=0) or an
        # ensemble (n_members) is checked by get_posterior.
        needs_samples = self.min_samples > 1 and posterior in (None, *DROPOUT_POSTERIORS)
        n_drop = check_n_drop(n_drop, self.min_samples if needs_samples else 0)
        super().__init__(dataset, net, **kwargs)
        self.posterior_estimate: PosteriorEstimate = get_posterior(
            posterior, net, n_drop=n_drop, n_members=n_members, min_samples=self.min_samples,
            rng=self.rng,
        )
        self.n_drop = int(n_drop)
        acquisition = acquisition if acquisition is not None else self.default_acquisition
        if acquisition not in ACQUISITIONS:
            raise DeepALError(
                f"unknown acquisition {acquisition!r}: choose one of {', '.join(ACQUISITIONS)}"
            )
        self.acquisition = acquisition
        self.beta = number("beta", beta, above=0, infinite=True, hint="inf for top-n")

    def state_parts(self) -> dict[str, Stateful]:
        return {"posterior": self.posterior_estimate}

    def sample_score(self, samples: torch.Tensor) -> torch.Tensor:
        """Scores ``(B,)`` of one batch of samples ``(K, B, C)``, higher = more informative."""
        raise NotImplementedError(f"{type(self).__name__} must implement sample_score")

    def scores(self, data: Dataset) -> torch.Tensor:
        """:meth:`sample_score` of every example of ``data``, streamed batch by batch."""
        parts = [self.sample_score(s) for s in self.posterior_estimate.sample_batches(data)]
        return torch.cat(parts) if parts else torch.empty(0)

    def select(self, scores: torch.Tensor, n: int) -> np.ndarray:
        """Positions of the batch: the top ``n``, or a stochastic batch drawn with ``self.rng``."""
        try:
            return stochastic_top_n(scores, n, self.acquisition, self.beta, self.rng)
        except ValueError as error:  # e.g. power acquisition on negative scores
            raise DeepALError(f"{type(self).__name__}: {error}") from error

    def query(self, n: int) -> np.ndarray:
        idxs, data = self.candidates()
        scores = self.scores(data)
        self.last_scores = scores.numpy()
        return idxs[self.select(scores, n)]

    # -- training and prediction go through the estimate (an ensemble trains M networks) ---

    def train(self) -> None:
        _, labeled_data = self.dataset.get_labeled_data()
        self.posterior_estimate.train(labeled_data)

    def predict_prob(self, data: Dataset) -> torch.Tensor:
        return self.posterior_estimate.predict_prob(data)

    def predict(self, data: Dataset) -> torch.Tensor:
        return self.predict_prob(data).argmax(dim=1)
