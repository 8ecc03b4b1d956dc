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

The ensemble (Lakshminarayanan et al., 2017; Beluch et al., 2018) trains ``n_members`` copies
of the network from different random seeds: its :meth:`~EnsemblePosterior.train` replaces
:meth:`deepal.Net.train`, and its predictions (:meth:`~PosteriorEstimate.predict_prob`) are
the members' mean.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from deepal.config.arguments import integer
from deepal.data.batches import iter_batches
from deepal.errors import DeepALError, UnknownNameError
from deepal.nets.dropout_sampling import dropout_sample_batches, inference_batches
from deepal.nets.modes import eval_mode, require_trained
from deepal.state import (
    check_keys,
    check_kind,
    generator_state,
    load_module,
    module_state,
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


class EnsemblePosterior(PosteriorEstimate):
    """A deep ensemble: ``n_members`` networks trained on the same data from different seeds.

    Each sample is one member's softmax. Member ``m`` is trained by the wrapped
    :class:`~deepal.Net` under ``torch.manual_seed(member_seeds[m])``; the seeds are drawn from
    torch's global generator, so :func:`deepal.seed_everything` fixes the whole ensemble, and
    torch's global state afterwards is as if only the seeds had been drawn.

    Attributes
    ----------
    members:
        The trained modules (empty before :meth:`train`).
    member_seeds:
        The seed each member was trained with.
    """

    name = "ensemble"

    def __init__(self, net: Net, n_members: int = 5) -> None:
        super().__init__(net)
        self.n_samples = n_members
        self.members: list[nn.Module] = []
        self.member_seeds: list[int] = []

    def train(self, data: Dataset, val_data: Dataset | None = None) -> None:
        seeds = [int(torch.randint(2**62, ()).item()) for _ in range(self.n_samples)]
        device = torch.device(self.net.device)
        members = []
        for m, seed in enumerate(seeds):
            # With params["warm_start"], member m continues from its own last version, never
            # from another member (with none yet, from a fresh module).
            self.net.clf = self.members[m] if m < len(self.members) else None
            # fork_rng restores the global generators, so members differ only by their seed.
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                torch.manual_seed(seed)
                super().train(data, val_data)
            members.append(self.net.clf)
        self.members = [member for member in members if member is not None]
        self.member_seeds = seeds

    def _trained_members(self) -> list[nn.Module]:
        if not self.members:
            raise DeepALError("the ensemble is not trained yet: call the strategy's train() first")
        if self.net.clf is not self.members[-1]:
            warnings.warn(
                "the net was retrained outside its ensemble, whose members are now stale: "
                "train through the strategy (strategy.train()) or the ensemble's train()",
                RuntimeWarning, stacklevel=3,
            )
        return self.members

    @torch.inference_mode()
    def sample_batches(self, data: Dataset) -> Iterator[torch.Tensor]:
        members = self._trained_members()
        device = torch.device(self.net.device)
        batch_size = self.net.params["test_args"]["batch_size"]
        with ExitStack() as stack:
            for member in members:
                stack.enter_context(eval_mode(member))
            for batch in iter_batches(data, batch_size):
                x = batch[0].to(device, non_blocking=True)
                yield torch.stack([F.softmax(member(x)[0], dim=1) for member in members]).cpu()

    def predict_prob(self, data: Dataset) -> torch.Tensor:
        """The members' mean probabilities: the ensemble's prediction."""
        return self.mean(data)

    def _state(self) -> dict[str, Any]:
        return {"members": [module_state(member) for member in self.members],
                "member_seeds": list(self.member_seeds)}

    def _load_state(self, state: Mapping[str, Any]) -> None:
        members = [load_module(self.net.net, weights, self.net.device, "ensemble member")
                   for weights in state["members"]]
        self.members = [member for member in members if member is not None]
        self.member_seeds = [int(seed) for seed in state["member_seeds"]]
        if self.members:  # the net serves the last member, as after train()
            self.net.clf = self.members[-1]


def dropout_posterior(net: Net, n_drop: int, seed: int | None = None) -> MCDropoutPosterior:
    """MC dropout with fresh masks (``seed=None``) or with the consistent masks of ``seed``:
    what :meth:`deepal.Net.predict_prob_dropout_batches` samples."""
    if seed is None:
        return MCDropoutPosterior(net, n_drop)
    return ConsistentMCDropoutPosterior(net, n_drop, seed=seed)


def get_posterior(
    name: str | None,
    net: Net,
    n_drop: int = 10,
    n_members: int = 5,
    min_samples: int = 1,
    rng: np.random.Generator | None = None,
) -> PosteriorEstimate:
    """Build a posterior estimate by name, with its arguments checked.

    Parameters
    ----------
    name:
        ``"softmax"``, ``"mc_dropout"``, ``"consistent_mc_dropout"`` or ``"ensemble"``;
        ``None`` picks ``"softmax"`` when ``n_drop`` is 0 and ``"mc_dropout"`` otherwise
        (DeepAL's convention).
    net:
        The network wrapper.
    n_drop:
        MC-dropout samples (the two dropout estimates only).
    n_members:
        Ensemble members (``ensemble`` only).
    min_samples:
        The fewest samples per example the caller can use (2 for disagreement scores such
        as BALD, which are 0 on a single sample).
    rng:
        Where ``consistent_mc_dropout`` draws each call's mask seed (see
        :class:`ConsistentMCDropoutPosterior`).

    Returns
    -------
    PosteriorEstimate
    """
    n_drop = integer("n_drop", n_drop, minimum=0)
    n_members = integer("n_members", n_members, minimum=0)
    if name is None:
        name = "softmax" if n_drop == 0 else "mc_dropout"
    if name not in POSTERIORS:
        raise UnknownNameError(f"unknown posterior {name!r}: choose one of {', '.join(POSTERIORS)}")
    estimate: PosteriorEstimate
    if name == "softmax":
        if min_samples > 1:
            raise DeepALError(
                f"this strategy needs at least {min_samples} posterior samples per example and "
                "the softmax gives 1: use posterior='mc_dropout' (n_drop >= 2) or 'ensemble'"
            )
        estimate = PosteriorEstimate(net)
    elif name in DROPOUT_POSTERIORS:
        if n_drop < max(1, min_samples):
            raise DeepALError(f"n_drop must be an integer >= {max(1, min_samples)}, got {n_drop}")
        if name == "consistent_mc_dropout":
            estimate = ConsistentMCDropoutPosterior(net, n_drop, rng)
        else:
            estimate = MCDropoutPosterior(net, n_drop)
    else:
        if n_members < max(1, min_samples):
            raise DeepALError(
                f"n_members must be an integer >= {max(1, min_samples)}, got {n_members}"
            )
        estimate = EnsemblePosterior(net, n_members)
    return estimate

