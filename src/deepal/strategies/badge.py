"""BADGE (Ash et al., 2020): k-means++ seeding on last-layer gradient embeddings."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from deepal.data.batches import iter_batches
from deepal.nets.net import eval_mode
from deepal.scores.gradients import gradient_factors, kmeans_pp_gradients
from deepal.strategies.base import Strategy


def warn_unless_last_layer_input(net: Any, data: Dataset, n_examples: int = 8) -> bool:
    """Check, on a few examples, that the net's embedding is the input of a linear layer that
    gives its logits (``logits == W h + b``, as the last-layer gradient strategies assume).

    Warns and returns ``False`` when no ``nn.Linear`` of the trained module does; returns
    ``True`` when one does, or when ``net`` has no ``nn.Module`` to inspect (a stand-in).
    """
    model = getattr(net, "clf", None)
    if not isinstance(model, nn.Module) or len(data) == 0:  # type: ignore[arg-type]
        return True
    x = next(iter_batches(data, n_examples))[0].to(getattr(net, "device", "cpu"))
    with eval_mode(model), torch.inference_mode():
        logits, embedding = model(x)
        for layer in model.modules():
            if (isinstance(layer, nn.Linear) and layer.in_features == embedding.shape[1]
                    and layer.out_features == logits.shape[1]
                    and torch.allclose(F.linear(embedding, layer.weight, layer.bias), logits,
                                       rtol=1e-4, atol=1e-4)):
                return True
    warnings.warn(
        f"the embedding of {type(model).__name__} is not the input of its last linear layer: "
        "the last-layer gradients (BADGE, BAIT) are then an approximation; return the input "
        "of the final nn.Linear as the embedding for the exact gradients",
        RuntimeWarning, stacklevel=3,
    )
    return False


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
    not the exact gradient, and a ``RuntimeWarning`` says so
    (:func:`warn_unless_last_layer_input`).

    Parameters
    ----------
    dataset, net, random_state, max_candidates:
        As for :class:`~deepal.strategies.base.Strategy` (the last two by keyword).

    Attributes
    ----------
    last_scores:
        The candidates' gradient-embedding norms at the last query.

    Examples
    --------
    >>> import numpy as np
    >>> import deepal
    >>> from deepal.nets import MLP
    >>> X = np.random.default_rng(0).normal(size=(60, 4)).astype("float32")
    >>> data = deepal.Data(X, np.arange(60) % 3)
    >>> first = data.initialize_labels(12, random_state=0)
    >>> net = deepal.Net(lambda: MLP(n_features=4, n_classes=3), {"n_epoch": 2}, device="cpu")
    >>> strategy = deepal.BADGE(data, net, random_state=0)
    >>> strategy.train()
    >>> picked = strategy.query(5)
    >>> len(set(picked.tolist())), bool(data.labeled_idxs[picked].any())
    (5, False)
    """

    def query(self, n: int) -> np.ndarray:
        idxs, data = self.candidates()
        warn_unless_last_layer_input(self.net, data)
        factors = gradient_factors(self.predict_prob(data))
        embeddings = self.get_embeddings(data)
        self.last_scores = (factors.norm(dim=1) * embeddings.double().norm(dim=1)).numpy()
        return idxs[kmeans_pp_gradients(factors, embeddings, n, self.rng)]
