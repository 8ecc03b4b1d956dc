"""Adversarial margin with DeepFool (DeepAL's ``AdversarialDeepFool``)."""

from __future__ import annotations

from functools import partial
from typing import Any

from deepal.data.pool import Data
from deepal.errors import DeepALError
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
        if max_classes is not None and (
            isinstance(max_classes, bool) or not isinstance(max_classes, int) or max_classes < 2
        ):
            raise DeepALError(f"max_classes must be an integer >= 2 or None, got {max_classes!r}")
        self.max_classes = max_classes

    def attack(self) -> Attack:
        return partial(deepfool_perturbation_norms, max_iter=self.max_iter,
                       max_classes=self.max_classes)
