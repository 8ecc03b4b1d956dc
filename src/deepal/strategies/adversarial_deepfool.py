"""Adversarial margin with DeepFool (DeepAL's ``AdversarialDeepFool``)."""

from __future__ import annotations

from functools import partial
from typing import Any

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
    progress:
        Show a progress bar over the batches.
    """

    def __init__(
        self,
        dataset: Data,
        net: Net,
        max_iter: int = 50,
        progress: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(dataset, net, max_iter, progress, **kwargs)

    def attack(self) -> Attack:
        return partial(deepfool_perturbation_norms, max_iter=self.max_iter)
