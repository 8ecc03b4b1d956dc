"""Adversarial margin with DeepFool (DeepAL's ``AdversarialDeepFool``)."""

from __future__ import annotations

from functools import partial
from typing import cast

import numpy as np
from torch import nn

from deepal.data.pool import Data
from deepal.nets.net import Net
from deepal.scores.adversarial import dataset_perturbation_norms, deepfool_perturbation_norms
from deepal.scores.selection import bottom_n
from deepal.strategies.adversarial_bim import check_max_iter
from deepal.strategies.base import Strategy


class AdversarialDeepFool(Strategy):
    """Pick the unlabeled examples that the smallest DeepFool perturbation pushes to another
    class.

    DeepFool steps each example to the nearest decision boundary of the network linearised at
    the current point, until its prediction changes; its score is the squared norm of the
    perturbation, and the smallest scores (the examples nearest the boundary) are picked first.
    Examples still unflipped after ``max_iter`` steps score ``+inf`` and are picked last.
    Batches of ``net.params["test_args"]["batch_size"]`` examples are attacked at once; inputs
    stay in the pool's ``input_bounds()`` when it has them.

    Parameters
    ----------
    dataset, net, random_state:
        As for :class:`~deepal.strategies.base.Strategy`.
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
        random_state: int | np.random.Generator | None = None,
        progress: bool = False,
    ) -> None:
        super().__init__(dataset, net, random_state)
        self.max_iter = check_max_iter(max_iter)
        self.progress = progress

    def query(self, n: int) -> np.ndarray:
        idxs, data = self.dataset.get_unlabeled_data()
        attack = partial(deepfool_perturbation_norms, max_iter=self.max_iter)
        scores, _ = dataset_perturbation_norms(
            cast(nn.Module, self.net.clf),  # Strategy has checked that the net is trained
            data, attack, self.net.params["test_args"]["batch_size"], self.net.device,
            self.progress,
        )
        self.last_scores = scores.numpy()
        return idxs[bottom_n(scores, n)]
