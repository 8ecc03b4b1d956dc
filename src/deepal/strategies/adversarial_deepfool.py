"""Adversarial margin with DeepFool (DeepAL's ``AdversarialDeepFool``)."""

from __future__ import annotations

from functools import partial
from typing import Any

from deepal.config.arguments import optional_integer
from deepal.data.pool import Data
from deepal.nets.net import Net
from deepal.scores.adversarial import Attack, deepfool_perturbation_norms
from deepal.strategies.adversarial import AdversarialMargin


class AdversarialDeepFool(AdversarialMargin):
    """Adversarial margin where each step goes to the nearest decision boundary of the network
    linearised at the current point (DeepFool).

    Parameters
    ----------
    dataset, net, random_state, max_candidates:
        As for :class:`~deepal.strategies.base.Strategy` (the last two by keyword).
    max_iter:
        Most DeepFool steps per example (DeepAL's default, 50).
    max_classes:
        Linearise only towards the ``max_classes`` most likely classes at each step (faster
        on many classes; see :func:`~deepal.scores.adversarial.deepfool_perturbation_norms`).
        ``None`` (default): every class, as DeepAL.
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
    >>> strategy = deepal.AdversarialDeepFool(data, net, random_state=0, max_iter=5)
    >>> strategy.train()
    >>> picked = strategy.query(5)
    >>> len(set(picked.tolist())), bool(data.labeled_idxs[picked].any())
    (5, False)
    """

    def __init__(
        self,
        dataset: Data,
        net: Net,
        max_iter: int = 50,
        progress: bool = False,
        max_classes: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(dataset, net, max_iter, progress, **kwargs)
        self.max_classes = optional_integer("max_classes", max_classes, minimum=2)

    def attack(self) -> Attack:
        return partial(deepfool_perturbation_norms, max_iter=self.max_iter,
                       max_classes=self.max_classes)
