"""Learning loss for active learning (Yoo & Kweon, 2019)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from deepal.config.arguments import integer, number
from deepal.config.base import ConfigError
from deepal.data.batches import iter_batches
from deepal.data.pool import Data
from deepal.errors import DeepALError
from deepal.nets.auxiliary import FeatureTap, LossPredictionModule, pooled
from deepal.nets.hooks import HookedNet, TrainingHook, TrainStep
from deepal.nets.net import Net, eval_mode
from deepal.scores.learned import loss_ranking_loss
from deepal.scores.selection import top_n
from deepal.state import Stateful, load_module, module_state
from deepal.strategies.base import Strategy


class LossPredictionHook(TrainingHook):
    """Trains a :class:`~deepal.nets.auxiliary.LossPredictionModule` jointly with ``net``'s
    classifier (the parameters as for :class:`LossPrediction`).

    Attributes
    ----------
    module:
        The trained module (``None`` before the first training).
    model:
        The classifier it was trained with.
    """

    def __init__(
        self,
        net: Net,
        feature_layers: list[str] | None,
        hidden: int,
        margin: float,
        weight: float,
        detach_after: float,
    ) -> None:
        self.net = net
        self.feature_layers = feature_layers
        self.hidden, self.margin, self.weight = hidden, margin, weight
        self.detach_after = detach_after
        self.module: LossPredictionModule | None = None
        self.model: nn.Module | None = None
        self.feature_sizes: list[int] | None = None
        self._tap: FeatureTap | None = None

    def on_train_start(
        self, net: HookedNet, model: nn.Module, data: Dataset
    ) -> Iterable[nn.Parameter]:
        if self.feature_layers is not None:
            self._tap = FeatureTap(model, self.feature_layers).attach()
        # One example through the model (eval mode: no dropout draw, no BatchNorm update)
        # tells the size of every feature.
        x = next(iter_batches(data, 1))[0].to(net.device)
        with torch.no_grad(), eval_mode(model):
            _, embedding = model(x)
            features = self._features(embedding)
        self.feature_sizes = [pooled(f).shape[1] for f in features]
        self.module = LossPredictionModule(self.feature_sizes, self.hidden)
        self.module.to(net.device).train()
        self.model = model
        return self.module.parameters()

    def _features(self, embedding: torch.Tensor) -> list[torch.Tensor]:
        return self._tap.features if self._tap is not None else [embedding]

    def extra_loss(self, step: TrainStep) -> torch.Tensor:
        assert self.module is not None
        features = self._features(step.embedding)
        if step.epoch >= self.detach_after * step.n_epoch:
            features = [f.detach() for f in features]
        target = F.cross_entropy(step.logits, step.y, reduction="none")
        return self.weight * loss_ranking_loss(self.module(features), target, self.margin)

    def on_train_end(self, net: HookedNet, model: nn.Module, data: Dataset) -> None:
        if self._tap is not None:
            self._tap.detach()
            self._tap = None
        assert self.module is not None
        self.module.zero_grad(set_to_none=True)
        self.module.eval()

    def state_dict(self) -> dict[str, Any]:
        return {"module": module_state(self.module), "feature_sizes": self.feature_sizes}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        sizes = state["feature_sizes"]
        self.feature_sizes = None if sizes is None else [int(size) for size in sizes]
        self.module = load_module(
            lambda: LossPredictionModule(self.feature_sizes or [], self.hidden),
            state["module"], self.net.device, "loss-prediction module",
        )
        self.model = self.net.clf if self.module is not None else None


class LossPrediction(Strategy):
    """Pick the unlabeled examples whose loss a learned module predicts to be highest.

    A small loss-prediction module is trained jointly with the classifier (through a
    training hook on the net, :attr:`hook`): the batch loss is ``cross-entropy + weight *
    ranking loss``, where the ranking loss (:func:`~deepal.scores.learned.loss_ranking_loss`)
    teaches the module to order pairs of examples by their true cross-entropy. As in the
    paper, the gradient from the module into the classifier is stopped after a fraction of
    the epochs (``detach_after``), so that the classifier finishes training on its own loss.

    Features: by default the module reads the network's embedding (the second output of
    ``forward``), which every deepal network has. ``feature_layers`` names intermediate
    submodules instead (e.g. ``["conv1", "conv2", "fc1"]`` for ``MNIST_Net``, or
    ``["layers.1", "layers.3", "layers.5", "layers.7"]`` for ``ResNet18``, the paper's
    choice); feature maps are globally average-pooled.

    Parameters
    ----------
    dataset, net, random_state, max_candidates:
        As for :class:`~deepal.strategies.base.Strategy` (the last two by keyword). The
        strategy appends its :attr:`hook` to ``net.training_hooks``.
    feature_layers:
        Names of submodules whose outputs feed the module; ``None`` = the embedding.
    hidden:
        Units per feature in the module (128 in the paper).
    margin, weight:
        The ranking loss's margin ``xi`` and its weight ``lambda`` (both 1 in the paper).
    detach_after:
        Fraction of the epochs after which features are detached (the paper: 120 of 200
        epochs, 0.6); 1 never detaches.

    Attributes
    ----------
    hook:
        The :class:`LossPredictionHook`; ``hook.module`` is the trained module.

    Examples
    --------
    >>> import numpy as np
    >>> import deepal
    >>> from deepal.nets import MLP
    >>> X = np.random.default_rng(0).normal(size=(60, 4)).astype("float32")
    >>> data = deepal.Data(X, np.arange(60) % 3)
    >>> first = data.initialize_labels(12, random_state=0)
    >>> net = deepal.Net(lambda: MLP(n_features=4, n_classes=3), {"n_epoch": 2}, device="cpu")
    >>> strategy = deepal.LossPrediction(data, net, random_state=0)
    >>> strategy.train()
    >>> picked = strategy.query(5)
    >>> len(set(picked.tolist())), bool(data.labeled_idxs[picked].any())
    (5, False)
    """

    def __init__(
        self,
        dataset: Data,
        net: Net,
        feature_layers: Sequence[str] | None = None,
        hidden: int = 128,
        margin: float = 1.0,
        weight: float = 1.0,
        detach_after: float = 0.6,
        **kwargs: Any,
    ) -> None:
        super().__init__(dataset, net, **kwargs)
        if number("detach_after", detach_after, at_least=0) > 1:
            raise ConfigError(f"detach_after must be a fraction in [0, 1], got {detach_after}")
        self.feature_layers = list(feature_layers) if feature_layers else None
        self.hook = LossPredictionHook(net, self.feature_layers,
                                       integer("hidden", hidden, minimum=1),
                                       number("margin", margin, at_least=0),
                                       number("weight", weight, at_least=0), detach_after)
        net.training_hooks.append(self.hook)

    def state_parts(self) -> dict[str, Stateful]:
        return {"hook": self.hook}

    # -- the query -------------------------------------------------------------------------

    @torch.inference_mode()
    def predicted_losses(self, data: Dataset) -> torch.Tensor:
        """The module's predicted loss of every example of ``data``, ``(N,)`` on the CPU."""
        model, module = self.net.clf, self.hook.module
        if module is None or model is None or model is not self.hook.model:
            raise DeepALError(
                "LossPrediction's module is trained with the net: call strategy.train() "
                "after creating the strategy (and after any other training of its net)"
            )
        tap = FeatureTap(model, self.feature_layers) if self.feature_layers else None
        parts = []
        with eval_mode(model):
            if tap is not None:
                tap.attach()
            try:
                batch_size = self.net.params["test_args"]["batch_size"]
                for batch in iter_batches(data, batch_size):
                    _, embedding = model(batch[0].to(self.net.device))
                    features = tap.features if tap is not None else [embedding]
                    parts.append(module(features).float().cpu())
            finally:
                if tap is not None:
                    tap.detach()
        return torch.cat(parts) if parts else torch.empty(0)

    def query(self, n: int) -> np.ndarray:
        idxs, data = self.candidates()
        scores = self.predicted_losses(data)
        self.last_scores = scores.numpy()
        return idxs[top_n(scores, n)]
