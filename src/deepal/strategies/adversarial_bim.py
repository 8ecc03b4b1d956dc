"""Adversarial margin with the basic iterative method (DeepAL's ``AdversarialBIM``)."""

from __future__ import annotations

from functools import partial
from typing import cast

import numpy as np
from torch import nn

from deepal.data.pool import Data
from deepal.errors import DeepALError
from deepal.nets.net import Net
from deepal.scores.adversarial import bim_perturbation_norms, dataset_perturbation_norms
from deepal.scores.selection import bottom_n
from deepal.strategies.base import Strategy


def check_max_iter(max_iter: int) -> int:
    """``max_iter`` as an int, or a :class:`DeepALError` if it is not an integer >= 1."""
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise DeepALError(f"max_iter must be an integer >= 1, got {max_iter!r}")
    return int(max_iter)


class AdversarialBIM(Strategy):
    """Pick the unlabeled examples that the smallest BIM perturbation pushes to another class.

    Each example is attacked with steps ``eps * sign(grad_x loss)`` until its prediction
    changes; its score is the squared norm of the perturbation, and the smallest scores (the
    examples nearest the decision boundary) are picked first. Examples still unflipped after
    ``max_iter`` steps score ``+inf`` and are picked last. Batches of
    ``net.params["test_args"]["batch_size"]`` examples are attacked at once; inputs stay in the
    pool's ``input_bounds()`` when it has them.

    Parameters
    ----------
    dataset, net, random_state:
        As for :class:`~deepal.strategies.base.Strategy`.
    eps:
        Step size per input component (DeepAL's default, 0.05).
    max_iter:
        Most steps per example (DeepAL's loop had no cap).
    progress:
        Show a progress bar over the batches.
    """

    def __init__(
        self,
        dataset: Data,
        net: Net,
        eps: float = 0.05,
        max_iter: int = 100,
        random_state: int | np.random.Generator | None = None,
        progress: bool = False,
    ) -> None:
        super().__init__(dataset, net, random_state)
        if not eps > 0:
            raise DeepALError(f"eps must be positive, got {eps!r}")
        self.eps = float(eps)
        self.max_iter = check_max_iter(max_iter)
        self.progress = progress

    def query(self, n: int) -> np.ndarray:
        idxs, data = self.dataset.get_unlabeled_data()
        attack = partial(bim_perturbation_norms, eps=self.eps, max_iter=self.max_iter)
        scores, _ = dataset_perturbation_norms(
            cast(nn.Module, self.net.clf),  # Strategy has checked that the net is trained
            data, attack, self.net.params["test_args"]["batch_size"], self.net.device,
            self.progress,
        )
        self.last_scores = scores.numpy()
        return idxs[bottom_n(scores, n)]
