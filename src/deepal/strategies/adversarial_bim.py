"""Adversarial margin with the basic iterative method (DeepAL's ``AdversarialBIM``)."""

from __future__ import annotations

from functools import partial
from typing import Any

from deepal.config.arguments import number
from deepal.data.pool import Data
from deepal.nets.net import Net
from deepal.scores.adversarial import Attack, bim_perturbation_norms
from deepal.strategies.adversarial import AdversarialMargin


class AdversarialBIM(AdversarialMargin):
    """Adversarial margin where each step is ``eps * sign(grad_x loss)`` (BIM).

    Parameters
    ----------
    dataset, net, random_state, max_candidates:
        As for :class:`~deepal.strategies.base.Strategy` (the last two by keyword).
    eps:
        Step size per input component (DeepAL's default, 0.05).
    max_iter:
        Most steps per example (DeepAL's loop had no cap).
    progress:
        Show a progress bar over the batches.

    Examples
    --------
    >>> import numpy as np
    >>> import deepal
    >>> from deepal.nets import MLP
    >>> X = np.random.default_rng(0).normal(size=(60, 4)).astype("float32")
    >>> data = deepal.Data(X, np.arange(60) % 3)
    >>> first = data.initialize_labels(12, random_state=0)
    >>> net = deepal.Net(lambda: MLP(n_features=4, n_classes=3), {"n_epoch": 2}, device="cpu")
    >>> strategy = deepal.AdversarialBIM(data, net, random_state=0, max_iter=5)
    >>> strategy.train()
    >>> picked = strategy.query(5)
    >>> len(set(picked.tolist())), bool(data.labeled_idxs[picked].any())
    (5, False)
    """

    def __init__(
        self,
        dataset: Data,
        net: Net,
        eps: float = 0.05,
        max_iter: int = 100,
        progress: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(dataset, net, max_iter, progress, **kwargs)
        self.eps = number("eps", eps, above=0)

    def attack(self) -> Attack:
        return partial(bim_perturbation_norms, eps=self.eps, max_iter=self.max_iter)
