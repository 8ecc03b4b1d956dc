"""BatchBALD (Kirsch et al., 2019): the batch with the highest joint mutual information."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from deepal.config.arguments import integer
from deepal.data.pool import Data
from deepal.errors import DeepALError
from deepal.nets.net import Net
from deepal.scores.batchbald import batchbald
from deepal.scores.uncertainty import bald
from deepal.strategies.bald import BALDScore
from deepal.strategies.posterior import PosteriorStrategy


class BatchBALD(BALDScore, PosteriorStrategy):
    """Greedily add the candidate that most raises ``I(y_batch ; w)``
    (see :mod:`deepal.scores.batchbald`).

    All candidates' samples are held at once, ``K * N * C`` floats: on a large pool set
    ``max_candidates`` (each greedy step costs about ``N * K * n_configurations * C``).

    The joint predictive ``mean_k prod_i p_k(y_i)`` treats sample ``k`` of every example as
    the same network, so by default the posterior is consistent MC dropout
    (``posterior="consistent_mc_dropout"``): ``n_drop`` masks drawn once per query from the
    strategy's ``rng`` and shared by the whole pool, as in Kirsch et al. (2019) and their code.
    With ``posterior="mc_dropout"`` each example gets its own masks: two copies of one example
    then look like two independent questions and the joint score of a batch is overstated.

    Parameters
    ----------
    dataset, net, random_state, max_candidates, n_members:
        As for :class:`~deepal.strategies.bald.BALDDropout` (BatchBALD scores the same
        samples, jointly).
    posterior:
        ``"consistent_mc_dropout"`` by default; ``"mc_dropout"`` (fresh masks per example,
        the old behaviour) and ``"ensemble"`` (already one network per sample) are accepted.
    n_drop:
        MC-dropout samples, 20 by default: the joint score can never exceed ``log n_drop``,
        so more samples tell larger batches apart (the paper uses 100 on MNIST).
    n_configurations:
        Label configurations enumerated exactly up to this many, sampled beyond (the
        paper's ``M``).

    Attributes
    ----------
    last_scores:
        The candidates' individual BALD scores at the last query.
    last_joint_mi:
        ``I(y_1..y_t ; w)`` after each greedy pick of the last query.

    Examples
    --------
    >>> import numpy as np
    >>> import deepal
    >>> from deepal.nets import MLP
    >>> X = np.random.default_rng(0).normal(size=(60, 4)).astype("float32")
    >>> data = deepal.Data(X, np.arange(60) % 3)
    >>> first = data.initialize_labels(12, random_state=0)
    >>> net = deepal.Net(lambda: MLP(n_features=4, n_classes=3), {"n_epoch": 2}, device="cpu")
    >>> strategy = deepal.BatchBALD(data, net, random_state=0, posterior="ensemble", n_members=2)
    >>> strategy.train()
    >>> picked = strategy.query(5)
    >>> len(set(picked.tolist())), bool(data.labeled_idxs[picked].any())
    (5, False)
    """

    default_posterior = "consistent_mc_dropout"
    state_attrs = (*PosteriorStrategy.state_attrs, "last_joint_mi")

    def __init__(
        self,
        dataset: Data,
        net: Net,
        n_drop: int = 20,
        *,
        n_configurations: int = 1_000,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("acquisition") not in (None, "top_n"):
            raise DeepALError("BatchBALD builds its batch greedily: it takes no acquisition")
        super().__init__(dataset, net, n_drop=n_drop, **kwargs)
        self.n_configurations = integer("n_configurations", n_configurations, minimum=1)
        self.last_joint_mi: np.ndarray | None = None

    def query(self, n: int) -> np.ndarray:
        idxs, data = self.candidates()
        samples = torch.cat(list(self.posterior_estimate.sample_batches(data)), dim=1)
        self.last_scores = bald(samples).numpy()
        samples = samples.to(self.net.device)  # the greedy search runs on the net's device
        generator = torch.Generator().manual_seed(int(self.rng.integers(2**62)))
        positions, joint_mi = batchbald(samples, n, self.n_configurations, generator)
        self.last_joint_mi = joint_mi.numpy()
        return idxs[positions]
