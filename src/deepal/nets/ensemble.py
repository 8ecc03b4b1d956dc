"""The deep ensemble as a posterior estimate (Lakshminarayanan et al., 2017; Beluch et al.,
2018): ``n_members`` copies of the network trained from different random seeds. Its
:meth:`~EnsemblePosterior.train` replaces :meth:`deepal.Net.train`, its samples are the
members' softmaxes, and its predictions are their mean."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from deepal.data.batches import iter_batches
from deepal.errors import DeepALError
from deepal.nets.modes import eval_mode
from deepal.nets.posterior import Net, PosteriorEstimate
from deepal.state import load_module, module_state


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
