"""Posterior estimates: samples of class probabilities, batch by batch.

Bayesian strategies (BALD, BatchBALD, variation ratio, the MC-dropout uncertainty strategies)
need several plausible predictions per example, not one. A posterior estimate provides them in
one shape whatever their origin: :meth:`PosteriorEstimate.sample_batches` yields ``(K, B, C)``
tensors of class probabilities, ``K`` samples of ``B`` examples, batch after batch, so a
consumer reduces each batch as it comes and memory stays ``O(K * B * C)``.

========================== =========================================== ===================
name                       samples                                     ``K``
========================== =========================================== ===================
``softmax``                the trained network's softmax               1
``mc_dropout``             the network with its dropout layers         ``n_drop``
                           sampling, a fresh mask for every example
``consistent_mc_dropout``  ``n_drop`` dropout masks drawn once per     ``n_drop``
                           call, sample ``k`` using mask ``k`` for
                           every example
``ensemble``               ``n_members`` networks trained              ``n_members``
                           independently
========================== =========================================== ===================

In ``mc_dropout`` "sample ``k``" of two examples comes from two different networks; in
``consistent_mc_dropout`` and ``ensemble`` it is one network for the whole pool, which scores
of several examples at once (BatchBALD's joint entropy) need. Per-example scores are the same
in expectation either way.

The softmax and the two dropout estimates are here; the ensemble is in
:mod:`deepal.nets.ensemble`, and :func:`deepal.nets.estimates.get_posterior` builds any of
them by name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from deepal.nets.dropout_sampling import dropout_sample_batches, inference_batches
from deepal.nets.modes import require_trained
from deepal.state import (
    check_keys,
    check_kind,
    generator_state,
    set_generator_state,
)

POSTERIORS = ("softmax", "mc_dropout", "consistent_mc_dropout", "ensemble")
DROPOUT_POSTERIORS = ("mc_dropout", "consistent_mc_dropout")


class Net(Protocol):
    """What an estimate uses of its network wrapper (:class:`deepal.Net` is one)."""

    net: Callable[[], nn.Module]
    clf: nn.Module | None
    device: torch.device
    params: dict[str, Any]
    progress: bool

    def train(self, data: Dataset, val_data: Dataset | None = None) -> None: ...

    def predict_prob(self, data: Dataset) -> torch.Tensor: ...


class PosteriorEstimate:
    """Samples of class probabilities from a :class:`~deepal.Net` (base class: the softmax).

    Parameters
    ----------
    net:
        The network wrapper; the estimate trains and evaluates through it.

    Attributes
    ----------
    n_samples:
        ``K``, the number of samples per example.
    """

    name = "softmax"

    def __init__(self, net: Net) -> None:
        self.net = net
        self.n_samples = 1

    def train(self, data: Dataset, val_data: Dataset | None = None) -> None:
        """Train on ``data`` (items ``(x, y, index)``), early-stopping on ``val_data`` if given
        (see :meth:`deepal.Net.train`)."""
        if val_data is None:
            self.net.train(data)
        else:
            self.net.train(data, val_data=val_data)

    def sample_batches(self, data: Dataset) -> Iterator[torch.Tensor]:
        """Yield class probabilities ``(K, B, C)`` (CPU) for consecutive batches of ``data``."""
        # The deterministic softmax is already O(N * C): one "batch" holds it all.
        yield self.net.predict_prob(data).unsqueeze(0)

    def mean(self, data: Dataset) -> torch.Tensor:
        """The mean of the samples for every example, shape ``(N, C)``."""
        means = [samples.mean(dim=0) for samples in self.sample_batches(data)]
        return torch.cat(means) if means else torch.empty(0)

    def predict_prob(self, data: Dataset) -> torch.Tensor:
        """The probabilities used to predict labels (accuracy): the network's softmax."""
        return self.net.predict_prob(data)

    def state_dict(self) -> dict[str, Any]:
        """What the estimate learned besides its net's module (which the net's own
        :meth:`~deepal.Net.state_dict` holds): its kind, plus what each kind keeps."""
        return {"posterior": self.name, **self._state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`, after the net's own state.

        Raises
        ------
        StateError
            If the state was saved by another kind of estimate or its entries do not fit.
        """
        owner = type(self).__name__
        check_kind(state, "posterior", self.name, owner)
        check_keys(state, self.state_dict(), owner)
        self._load_state(state)

    def _state(self) -> dict[str, Any]:
        return {}

    def _load_state(self, state: Mapping[str, Any]) -> None:
        pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_samples={self.n_samples})"


class MCDropoutPosterior(PosteriorEstimate):
    """``n_drop`` forward passes with the dropout layers sampling (Gal & Ghahramani, 2016)."""

    name = "mc_dropout"

    def __init__(self, net: Net, n_drop: int = 10) -> None:
        super().__init__(net)
        self.n_samples = n_drop

    def sample_batches(self, data: Dataset) -> Iterator[torch.Tensor]:
        return self._dropout_batches(data, seed=None)

    def _dropout_batches(self, data: Dataset, seed: int | None) -> Iterator[torch.Tensor]:
        """The samples of :mod:`deepal.nets.dropout_sampling`: fresh masks, or the
        consistent masks of ``seed``."""
        net = self.net
        batches = inference_batches(data, net.params["test_args"]["batch_size"],
                                    f"MC dropout x{self.n_samples}", net.progress)
        return dropout_sample_batches(require_trained(net.clf), batches, self.n_samples,
                                      net.device, seed)


class ConsistentMCDropoutPosterior(MCDropoutPosterior):
    """MC dropout with ``n_drop`` masks per dropout module drawn once per call of
    :meth:`sample_batches` and shared by every example (consistent MC dropout, Kirsch et al.,
    2019; see :mod:`deepal.nets.consistent_dropout`): sample ``k`` is one network.

    Parameters
    ----------
    net, n_drop:
        As for :class:`MCDropoutPosterior`.
    rng:
        Each call draws the masks' seed from it (a strategy passes its own, so its
        ``random_state`` fixes the masks); ``None`` draws it from torch's global generator.
    seed:
        Use the masks of this seed at every call instead (``rng`` is then not drawn from):
        ``n_drop`` fixed networks, as a test-time MC evaluation needs.

    Attributes
    ----------
    last_seed:
        The seed of the masks of the last call (``None`` before the first).
    """

    name = "consistent_mc_dropout"

    def __init__(
        self,
        net: Net,
        n_drop: int = 10,
        rng: np.random.Generator | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(net, n_drop)
        self.rng = rng
        self.seed = seed
        self.last_seed: int | None = None

    def sample_batches(self, data: Dataset) -> Iterator[torch.Tensor]:
        if self.seed is not None:
            seed = self.seed
        elif self.rng is not None:
            seed = int(self.rng.integers(2**62))
        else:
            seed = int(torch.randint(2**62, ()).item())
        self.last_seed = seed
        return self._dropout_batches(data, seed)

    def _state(self) -> dict[str, Any]:
        rng = None if self.rng is None else generator_state(self.rng)
        return {"last_seed": self.last_seed, "rng": rng}

    def _load_state(self, state: Mapping[str, Any]) -> None:
        self.last_seed = state["last_seed"]
        if self.rng is not None and state["rng"] is not None:
            set_generator_state(self.rng, state["rng"])


def dropout_posterior(net: Net, n_drop: int, seed: int | None = None) -> MCDropoutPosterior:
    """MC dropout with fresh masks (``seed=None``) or with the consistent masks of ``seed``:
    what :meth:`deepal.Net.predict_prob_dropout_batches` samples."""
    if seed is None:
        return MCDropoutPosterior(net, n_drop)
    return ConsistentMCDropoutPosterior(net, n_drop, seed=seed)
