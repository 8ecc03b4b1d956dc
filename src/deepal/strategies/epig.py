"""EPIG (Bickford Smith et al., 2023): pick the examples whose labels most inform the
predictions at target inputs drawn from the unlabeled pool."""

from __future__ import annotations

from typing import Any

import numpy as np

from deepal.config.arguments import integer
from deepal.data.pool import Data
from deepal.errors import DeepALError
from deepal.nets.net import Net
from deepal.scores.bayesian import epig_from_batches
from deepal.strategies.posterior import PosteriorStrategy


class EPIG(PosteriorStrategy):
    """Highest expected predictive information gain ``mean_m I(y; y*_m)`` first
    (see :func:`deepal.scores.bayesian.epig`).

    BALD scores what a label says about the weights, which may not matter for any prediction
    anyone asks for; EPIG scores what it says about the labels of target inputs, here
    ``n_targets`` examples drawn afresh at each query from the unlabeled pool (the paper's
    pool-based setting, with 100 targets). Targets and candidates are sampled in one pass of
    the posterior, so sample ``k`` is the same network for both, as the joint predictive
    needs: consistent MC dropout by default (``n_drop`` masks drawn from the strategy's
    ``rng`` at every query), or a deep ensemble. Fresh masks per example
    (``posterior="mc_dropout"``) would make the two labels independent samples and are
    refused. Memory: the targets' ``K * M * C`` samples, plus one block of candidates.

    Parameters
    ----------
    dataset, net, random_state, max_candidates, n_members, acquisition, beta:
        As for :class:`~deepal.strategies.bald.BALDDropout`, by keyword.
    n_drop:
        Posterior samples ``K`` (consistent MC-dropout masks), 20 by default, at least 2.
    posterior:
        ``"consistent_mc_dropout"`` (default) or ``"ensemble"``.
    n_targets:
        Target inputs drawn from the unlabeled pool at each query (default 100; all of it
        when it holds fewer). The candidates (``max_candidates``) are drawn first, then the
        targets, from the whole unlabeled pool.

    Attributes
    ----------
    last_scores:
        The candidates' EPIG at the last query, in nats.
    last_targets:
        The pool indices of the last query's target inputs.

    Examples
    --------
    >>> import numpy as np
    >>> import deepal
    >>> from deepal.nets import MLP
    >>> X = np.random.default_rng(0).normal(size=(60, 4)).astype("float32")
    >>> data = deepal.Data(X, np.arange(60) % 3)
    >>> first = data.initialize_labels(12, random_state=0)
    >>> net = deepal.Net(lambda: MLP(n_features=4, n_classes=3), {"n_epoch": 2}, device="cpu")
    >>> strategy = deepal.EPIG(data, net, n_targets=20, random_state=0)
    >>> strategy.train()
    >>> picked = strategy.query(5)
    >>> len(set(picked.tolist())), bool(data.labeled_idxs[picked].any())
    (5, False)
    """

    min_samples = 2
    default_posterior = "consistent_mc_dropout"
    default_n_drop = 20
    state_attrs = (*PosteriorStrategy.state_attrs, "last_targets")

    def __init__(
        self,
        dataset: Data,
        net: Net,
        n_drop: int | None = None,
        *,
        n_targets: int = 100,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("posterior") == "mc_dropout":
            raise DeepALError(
                "EPIG needs sample k to be one network for candidates and targets, and "
                "posterior='mc_dropout' draws fresh masks per example: use "
                "'consistent_mc_dropout' (the default) or 'ensemble'"
            )
        self.n_targets = integer("n_targets", n_targets, minimum=1)
        super().__init__(dataset, net, n_drop, **kwargs)
        self.last_targets: np.ndarray | None = None

    def target_idxs(self) -> np.ndarray:
        """Pool indices of ``n_targets`` unlabeled examples drawn with the strategy's ``rng``."""
        unlabeled = np.flatnonzero(~self.dataset.labeled_idxs)
        if len(unlabeled) <= self.n_targets:
            return unlabeled
        return np.sort(self.rng.choice(unlabeled, size=self.n_targets, replace=False))

    def query(self, n: int) -> np.ndarray:
        idxs = self.candidate_idxs()
        targets = self.target_idxs()
        # One pass over targets then candidates: one mask draw (or one ensemble) for both.
        data = self.dataset.get_inputs(np.concatenate([targets, idxs]))
        # The K * M * C * C joint entries per candidate are the cost: computed on the net's device.
        device = self.net.device
        batches = (s.to(device) for s in self.posterior_estimate.sample_batches(data))
        scores = epig_from_batches(batches, len(targets)).cpu()
        self.last_targets = targets
        self.last_scores = scores.numpy()
        return idxs[self.select(scores, n)]
