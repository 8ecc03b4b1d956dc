"""BADGE (Ash et al., 2020): k-means++ seeding on last-layer gradient embeddings."""

from __future__ import annotations

import numpy as np

from deepal.scores.gradients import gradient_factors, kmeans_pp_gradients
from deepal.strategies.base import Strategy


class BADGE(Strategy):
    """Pick a batch both uncertain and diverse: k-means++ seeding on the gradient embeddings
    ``(p - e_argmax p) (x) h`` of the unlabeled examples.

    An example's gradient embedding is the gradient of the cross-entropy loss, with its
    predicted label, with respect to the last layer's weights: long when the network is
    unsure, pointing where its prediction would move the weights. The ``N x (C * d)`` matrix
    is never built (see :mod:`deepal.scores.gradients`): memory is ``O(N * (C + d))``.

    Assumes the network's embedding ``h`` is the input of its last linear layer
    (``logits = W h + b`` in eval mode), which holds for every built-in architecture (their
    dropout sits between the embedding and the last layer and is off at prediction time). For
    a network with more layers after its embedding the embedding is still used, but it is then
    not the exact gradient.

    Parameters
    ----------
    dataset, net, random_state, max_candidates:
        As for :class:`~deepal.strategies.base.Strategy` (the last two by keyword).

    Attributes
    ----------
    last_scores:
        The candidates' gradient-embedding norms at the last query.
    """

    def query(self, n: int) -> np.ndarray:
        idxs, data = self.candidates()
        factors = gradient_factors(self.predict_prob(data))
        embeddings = self.get_embeddings(data)
        self.last_scores = (factors.norm(dim=1) * embeddings.double().norm(dim=1)).numpy()
        return idxs[kmeans_pp_gradients(factors, embeddings, n, self.rng)]
