"""Wasserstein adversarial active learning (Shui et al., 2020)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from deepal.config.arguments import integer, number
from deepal.data.batches import iter_batches
from deepal.data.pool import Data
from deepal.errors import DeepALError
from deepal.nets.auxiliary import mlp_scorer
from deepal.nets.hooks import HookedNet, TrainingHook, TrainStep, cycle_batches
from deepal.nets.net import Net, eval_mode
from deepal.scores.learned import gradient_penalty, waal_uncertainty
from deepal.scores.selection import top_n
from deepal.state import Stateful, load_module, module_state
from deepal.strategies.base import Strategy


class WAALHook(TrainingHook):
    """Trains a critic on the classifier's embedding, adversarially with it (the parameters
    as for :class:`WAAL`; ``rng`` is the strategy's).

    Attributes
    ----------
    critic:
        The trained critic (``None`` before the first training).
    model:
        The classifier it was trained with.
    """

    def __init__(
        self,
        dataset: Data,
        net: Net,
        rng: np.random.Generator,
        alpha: float,
        gp_weight: float,
        critic_hidden: int,
        critic_lr: float,
        critic_steps: int,
    ) -> None:
        self.dataset, self.net, self.rng = dataset, net, rng
        self.alpha, self.gp_weight = alpha, gp_weight
        self.critic_hidden, self.critic_lr = critic_hidden, critic_lr
        self.critic_steps = critic_steps
        self.critic: nn.Module | None = None
        self.model: nn.Module | None = None
        self._critic_opt: torch.optim.Optimizer | None = None
        self._unlabeled: Iterator[tuple[Any, ...]] | None = None

    def on_train_start(
        self, net: HookedNet, model: nn.Module, data: Dataset
    ) -> Iterable[nn.Parameter]:
        self.critic = self._new_critic(model)
        self.critic.to(net.device).train()
        self._critic_opt = torch.optim.Adam(self.critic.parameters(), lr=self.critic_lr)
        _, unlabeled = self.dataset.get_unlabeled_data()
        generator = torch.Generator().manual_seed(int(self.rng.integers(2**62)))
        batch_size = net.params["train_args"]["batch_size"]
        self._unlabeled = (
            cycle_batches(unlabeled, batch_size, generator) if self.dataset.n_unlabeled else None
        )
        self.model = model
        return ()  # the critic has its own optimiser: it maximises what the net minimises

    def _new_critic(self, model: nn.Module) -> nn.Module:
        return mlp_scorer(int(model.get_embedding_dim()), self.critic_hidden)  # type: ignore[operator]

    def extra_loss(self, step: TrainStep) -> torch.Tensor | None:
        assert self.critic is not None and self._critic_opt is not None
        if self._unlabeled is None:
            return None
        xu = next(self._unlabeled)[0].to(step.x.device)
        if len(xu) < 2:
            return None  # no distribution to compare (and BatchNorm needs two)
        _, zu = step.model(xu)
        zl = step.embedding
        for _ in range(self.critic_steps):
            gap = self.critic(zu.detach()).mean() - self.critic(zl.detach()).mean()
            penalty = gradient_penalty(self.critic, zu, zl)
            self._critic_opt.zero_grad(set_to_none=True)
            (self.gp_weight * penalty - gap).backward()
            self._critic_opt.step()
        return self.alpha * (self.critic(zu).mean() - self.critic(zl).mean())

    def on_train_end(self, net: HookedNet, model: nn.Module, data: Dataset) -> None:
        assert self.critic is not None
        self.critic.zero_grad(set_to_none=True)
        self.critic.eval()
        self._unlabeled = None

    def state_dict(self) -> dict[str, Any]:
        return {"critic": module_state(self.critic)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        model = self.net.clf
        self.critic = None if model is None else load_module(
            lambda: self._new_critic(model), state["critic"], self.net.device, "critic")
        self.model = model if self.critic is not None else None


class WAAL(Strategy):
    """Pick unlabeled examples that are uncertain and unlike the labeled set, with a
    classifier trained to align labeled and unlabeled features.

    Training (through a training hook on the net): a critic on the network's embedding
    estimates the Wasserstein distance between the unlabeled and the labeled feature
    distributions (WGAN-GP: it maximises ``E_U[D] - E_L[D]`` under a gradient penalty), and
    the classifier minimises ``cross-entropy + alpha * (E_U[D] - E_L[D])``: the min-max
    training of the paper. Each labeled batch is paired with a batch of the unlabeled pool;
    the critic takes ``critic_steps`` steps per batch.

    Query: ``waal_uncertainty(p) + diversity_weight * D(embedding)``, highest first: the
    paper's uncertainty (upper bounds of the worst-case loss,
    :func:`~deepal.scores.learned.waal_uncertainty`) plus the critic's score, which is high
    where examples look unlabeled (diverse from the labeled set).

    Simplifications: the critic reads the embedding (the feature extractor is the network
    up to its embedding); the paper's re-weighting of the unlabeled term by the pool ratio
    (its "redundancy trick") and its data augmentation are left out.

    Parameters
    ----------
    dataset, net, random_state, max_candidates:
        As for :class:`~deepal.strategies.base.Strategy` (the last two by keyword). The
        strategy appends its :attr:`hook` to ``net.training_hooks``.
    alpha:
        Weight of the adversarial term in the classifier's loss.
    gp_weight:
        Weight of the gradient penalty (10, as in WGAN-GP).
    diversity_weight:
        Weight of the critic's score against the uncertainty in the query (a choice:
        the critic is kept about 1-Lipschitz, so its scores span a few units while the
        uncertainty spans tens; tune it for your data).
    critic_hidden, critic_lr, critic_steps:
        The critic's hidden units, Adam learning rate and steps per training batch.

    Attributes
    ----------
    hook:
        The :class:`WAALHook`; ``hook.critic`` is the trained critic.

    Examples
    --------
    >>> import numpy as np
    >>> import deepal
    >>> from deepal.nets import MLP
    >>> X = np.random.default_rng(0).normal(size=(60, 4)).astype("float32")
    >>> data = deepal.Data(X, np.arange(60) % 3)
    >>> first = data.initialize_labels(12, random_state=0)
    >>> net = deepal.Net(lambda: MLP(n_features=4, n_classes=3), {"n_epoch": 2}, device="cpu")
    >>> strategy = deepal.WAAL(data, net, random_state=0)
    >>> strategy.train()
    >>> picked = strategy.query(5)
    >>> len(set(picked.tolist())), bool(data.labeled_idxs[picked].any())
    (5, False)
    """

    def __init__(
        self,
        dataset: Data,
        net: Net,
        alpha: float = 0.01,
        gp_weight: float = 10.0,
        diversity_weight: float = 10.0,
        critic_hidden: int = 100,
        critic_lr: float = 1e-3,
        critic_steps: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(dataset, net, **kwargs)
        self.diversity_weight = number("diversity_weight", diversity_weight, at_least=0)
        self.hook = WAALHook(dataset, net, self.rng, number("alpha", alpha, at_least=0),
                             number("gp_weight", gp_weight, at_least=0),
                             integer("critic_hidden", critic_hidden, minimum=1),
                             number("critic_lr", critic_lr, above=0),
                             integer("critic_steps", critic_steps, minimum=1))
        net.training_hooks.append(self.hook)

    def state_parts(self) -> dict[str, Stateful]:
        return {"hook": self.hook}

    # -- the query -------------------------------------------------------------------------

    @torch.inference_mode()
    def scores(self, data: Dataset) -> torch.Tensor:
        """The query score of every example of ``data``, ``(N,)``; higher = picked first."""
        model, critic = self.net.clf, self.hook.critic
        if critic is None or model is None or model is not self.hook.model:
            raise DeepALError(
                "WAAL's critic is trained with the net: call strategy.train() after "
                "creating the strategy (and after any other training of its net)"
            )
        parts = []
        with eval_mode(model):
            for batch in iter_batches(data, self.net.params["test_args"]["batch_size"]):
                logits, embedding = model(batch[0].to(self.net.device))
                score = waal_uncertainty(torch.softmax(logits.float(), dim=1))
                parts.append((score + self.diversity_weight * critic(embedding)).cpu())
        return torch.cat(parts) if parts else torch.empty(0)

    def query(self, n: int) -> np.ndarray:
        idxs, data = self.candidates()
        scores = self.scores(data)
        self.last_scores = scores.numpy()
        return idxs[top_n(scores, n)]
