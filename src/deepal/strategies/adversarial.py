"""Adversarial margin (Ducoffe & Precioso, 2018): label the examples nearest the decision
boundary, measured by the smallest perturbation that changes the prediction.

:class:`AdversarialMargin` is the one mechanism; ``AdversarialBIM`` and
``AdversarialDeepFool`` only choose the attack.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
from torch import nn

from deepal.config.arguments import integer
from deepal.data.pool import Data
from deepal.nets.net import Net
from deepal.scores.adversarial import Attack, dataset_perturbation_norms
from deepal.scores.selection import bottom_n
from deepal.strategies.base import Strategy


class AdversarialMargin(Strategy):
    """Pick the unlabeled examples with the smallest adversarial perturbation.

    Every unlabeled example is attacked until its prediction changes; its score is the squared
    norm of the perturbation, and the smallest scores are picked first. Examples still
    unflipped after ``max_iter`` steps score ``+inf`` and are picked last. Batches of
    ``net.params["test_args"]["batch_size"]`` examples are attacked at once on the net's
    device; inputs stay in the pool's ``input_bounds()`` when it has them. A progress bar shows
    when ``progress`` or the net's ``progress`` is set. Subclasses implement :meth:`attack`.
    """

    def __init__(
        self,
        dataset: Data,
        net: Net,
        max_iter: int,
        progress: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(dataset, net, **kwargs)
        self.max_iter = integer("max_iter", max_iter, minimum=1)
        self.progress = progress

    def attack(self) -> Attack:
        """The batch attack: ``attack(model, x, bounds=...) -> (sq_norms, flipped)``."""
        raise NotImplementedError

    def query(self, n: int) -> np.ndarray:
        idxs, data = self.candidates()
        scores, _ = dataset_perturbation_norms(
            cast(nn.Module, self.net.clf),  # Strategy has checked that the net is trained
            data, self.attack(), self.net.params["test_args"]["batch_size"], self.net.device,
            self.progress or self.net.progress,
        )
        self.last_scores = scores.numpy()
        return idxs[bottom_n(scores, n)]
