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
