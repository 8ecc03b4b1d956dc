"""The :class:`Net` wrapper: trains a classifier and serves predictions, MC-dropout samples and
embeddings to strategies."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from deepal.config.base import validated
from deepal.config.training import SemiSupervised
from deepal.data.batches import epoch_order, iter_batches
from deepal.errors import DeepALError, EmptyPoolError
from deepal.nets.dropout_sampling import inference_batches
from deepal.nets.hooks import TrainingHook, TrainStep
from deepal.nets.modes import DROPOUT_TYPES, eval_mode, mc_dropout, require_trained
from deepal.nets.params import DEFAULT_PARAMS, MONITORS, OPTIMIZERS, checked_params, merge_params
from deepal.nets.posterior import dropout_posterior
from deepal.nets.semi_supervised import epoch_examples, semi_supervised_hook
from deepal.placement import placed
from deepal.state import check_keys, load_module, module_state


def default_device() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Net:
    """A classifier for active learning (DeepAL's ``Net``).

    Parameters
    ----------
    net:
        A class (or any zero-argument callable) building an :class:`~torch.nn.Module` whose
        ``forward`` returns ``(logits, embedding)`` and which has ``get_embedding_dim()``. A new
        module is built at every :meth:`train`, so each round trains from scratch as in DeepAL.
    params:
        ``n_epoch``, ``train_args`` (``batch_size``), ``test_args`` (``batch_size``),
        ``optimizer`` (``"SGD"``, ``"Adam"`` or ``"AdamW"``; default SGD) and ``optimizer_args``
        (passed to the optimiser, e.g. ``lr``, ``momentum``). Missing keys take the defaults
        of :data:`DEFAULT_PARAMS`. Optional: ``warm_start`` (continue from the last trained
        module) with ``warm_start_epochs`` (the epochs of such a continued training; default
        ``n_epoch``), ``patience`` and ``monitor`` (early stopping, see :meth:`train`),
        ``epoch_samples`` (an epoch of this many examples drawn from the training set, each
        ``epoch_samples // N`` or one more times, instead of one pass, when it exceeds its
        size ``N``: Kirsch et al., 2019), ``weight_decay_per_example`` (``c``: each training
        uses weight decay ``c / N`` for ``N`` training examples, replacing
        ``optimizer_args["weight_decay"]``) and
        ``weight_decay_params`` (names or name prefixes of the module's parameters, e.g.
        ``["fc1.weight"]``: only those decay, as a Keras regulariser on one layer; the
        others, and a training hook's, train with no weight decay) and ``semi_supervised``
        (a dict of :class:`~deepal.config.training.SemiSupervised`, e.g. ``{"method":
        "fixmatch", "threshold": 0.95}``: train on :attr:`unlabeled_inputs` too, see
        :mod:`deepal.nets.semi_supervised`).
    device:
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``... Defaults to CUDA when available.
    progress:
        Show a progress bar while training.
    n_classes:
        How many class scores the module must give; a :class:`~deepal.Strategy` sets it to
        its data set's ``n_classes``. :meth:`train` checks it at the first batch.

    Attributes
    ----------
    clf:
        The trained module (``None`` before the first :meth:`train`).
    training_hooks:
        :class:`~deepal.nets.hooks.TrainingHook` objects, empty by default. Strategies that
        learn alongside the classifier (``LossPrediction``, ``VAAL``, ``WAAL``) append
        theirs: :meth:`train` then calls each hook's ``on_train_start(net, model, data)``
        (which may return extra parameters for the optimiser), ``extra_loss(step)`` (added to
        each batch's cross-entropy), ``after_step(step)`` after each optimiser step and
        ``on_train_end(net, model, data)``, hook after hook. Without hooks, training is
        unchanged.
    unlabeled_inputs:
        ``None``, or a function returning a dataset of the inputs (items ``(x, ...)``, no
        labels) that semi-supervised training learns from, called at each :meth:`train` with
        ``params["semi_supervised"]``. A :class:`~deepal.Strategy` sets it to its pool's
        unlabeled examples.

    Examples
    --------
    >>> import numpy as np
    >>> import deepal
    >>> from deepal.nets import MLP
    >>> data = deepal.Data(np.random.default_rng(0).normal(size=(40, 4)).astype("float32"),
    ...                    np.arange(40) % 2)
    >>> first = data.initialize_labels(10, random_state=0)
    >>> net = Net(lambda: MLP(n_features=4, n_classes=2), {"n_epoch": 2}, device="cpu")
    >>> net.train(data.get_labeled_data()[1])
    >>> net.predict_prob(data.get_unlabeled_data()[1]).shape
    torch.Size([30, 2])
    """

    def __init__(
        self,
        net: Callable[[], nn.Module],
        params: dict[str, Any] | None = None,
        device: str | torch.device | None = None,
        progress: bool = False,
        n_classes: int | None = None,
    ) -> None:
        self.net = net
        self.n_classes = n_classes
        self.params = checked_params(params or {})
        self.device = available_device(device) if device is not None else default_device()
        self.progress = progress
        self.clf: nn.Module | None = None
        self.epochs_trained = 0
        self.training_hooks: list[TrainingHook] = []
        self.unlabeled_inputs: Callable[[], Dataset] | None = None

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A net pickled on a GPU (an experiment's checkpoint) and loaded where there is none
        # continues on this machine's default device.
        self.__dict__.update(state)
        self.__dict__.setdefault("n_classes", None)  # pickled before nets knew their classes
        self.__dict__.setdefault("unlabeled_inputs", None)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            self.device = default_device()
            if self.clf is not None:
                self.clf = placed(self.clf, self.device)

    # -- saved state ---------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """What the net learned: the trained module's weights (``None`` before the first
        :meth:`train`) and :attr:`epochs_trained`. Hooks' states are their owners' to save.

        Examples
        --------
        >>> from deepal.nets import MLP
        >>> net = Net(MLP, {"n_epoch": 1}, device="cpu")
        >>> net.state_dict()
        {'clf': None, 'epochs_trained': 0}
        """
        return {"clf": module_state(self.clf), "epochs_trained": self.epochs_trained}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`: the module is rebuilt with :attr:`net` on this net's
        device (a net trained on a GPU loads on a CPU) and given the saved weights.

        Raises
        ------
        StateError
            If the state has other entries or weights that do not fit the module.
        """
        check_keys(state, ("clf", "epochs_trained"), "Net")
        self.clf = load_module(self.net, state["clf"], self.device, "network")
        self.epochs_trained = int(state["epochs_trained"])

    # -- training ------------------------------------------------------------------------

    def train(self, data: Dataset, val_data: Dataset | None = None) -> None:
        """Build a fresh module and train it on ``data`` (items ``(x, y, index)``).

        Every hook of :attr:`training_hooks` is called, in order, at the start, at every
        batch and at the end (see :mod:`deepal.nets.hooks`). With ``params["warm_start"]``
        true, training continues from the current module instead (a new optimiser), for
        ``params["warm_start_epochs"]`` epochs when set. With
        ``val_data``, training stops once its score has not improved for
        ``params["patience"]`` epochs (default 3) and the weights of the best epoch are kept;
        :attr:`epochs_trained` says how many epochs ran. ``params["monitor"]`` names the
        score: the validation ``"loss"`` (default; lower is better) or ``"accuracy"`` (higher
        is better, as Kirsch et al., 2019 do); a tie is no improvement. With
        ``params["semi_supervised"]``, each batch also learns from ``mu`` times as many
        inputs of :attr:`unlabeled_inputs` and an epoch makes at least ``steps_per_epoch``
        optimiser steps (:mod:`deepal.nets.semi_supervised`).

        Raises
        ------
        EmptyPoolError
            If ``data`` is empty.
        DeepALError
            At the first batch, if the module does not take the data's inputs, or gives
            another number of class scores than :attr:`n_classes` (or fewer than a label
            needs), naming both sizes; or, with ``params["semi_supervised"]``, if
            :attr:`unlabeled_inputs` is not set."""
        if len(data) == 0:  # type: ignore[arg-type]
            raise EmptyPoolError(
                "no labeled examples to train on: label some first (e.g. n_init_labeled > 0)"
            )
        previous = self.clf if self.params.get("warm_start") else None
        model = previous if previous is not None else placed(self.net(), self.device)
        self.clf = model
        continuing = previous is not None
        model.train()
        hooks = list(self.training_hooks)
        optimizer = self._optimizer(model, data, hooks)
        generator = torch.Generator().manual_seed(int(torch.randint(2**62, ()).item()))
        # Built after the optimiser: it adds no parameters, and the other hooks' starts (and
        # their draws from torch's generator) stay as they were without it.
        semi = semi_supervised_hook(self.params, self.unlabeled_inputs, generator)
        if semi is not None:
            hooks.append(semi)
        n_epoch = self.params["n_epoch"]
        if continuing and self.params.get("warm_start_epochs") is not None:
            n_epoch = self.params["warm_start_epochs"]
        self.epochs_trained = 0
        monitor = self.params.get("monitor", "loss")
        stopper = _EarlyStopping(int(self.params.get("patience", 3)))
        for epoch in tqdm(range(n_epoch), desc="train", leave=False, disable=not self.progress):
            self._train_epoch(model, data, optimizer, generator, (epoch, n_epoch), hooks)
            self.epochs_trained = epoch + 1
            if val_data is not None and stopper.stop(self._validation_score(val_data, monitor),
                                                     model):
                break
        if val_data is not None:
            stopper.restore(model)
        for hook in hooks:
            hook.on_train_end(self, model, data)
        optimizer.zero_grad(set_to_none=True)  # the trained model holds no stale gradients
        model.eval()

    def _optimizer(
        self, model: nn.Module, data: Dataset, hooks: list[TrainingHook]
    ) -> torch.optim.Optimizer:
        """The optimiser of ``model`` and of the parameters the hooks add, each hook's
        ``on_train_start`` called in order."""
        parameters: Any = model.parameters()
        if hooks:
            parameters = [*parameters, *(parameter for hook in hooks
                                         for parameter in hook.on_train_start(self, model, data))]
        optimizer_args = dict(self.params["optimizer_args"])
        per_example = self.params.get("weight_decay_per_example")
        if per_example:  # Gal et al. (2017): the prior's weight decay shrinks as labels grow
            optimizer_args["weight_decay"] = float(per_example) / len(data)  # type: ignore[arg-type]
        decayed = self.params.get("weight_decay_params")
        if decayed is not None:
            parameters = weight_decay_groups(model, decayed, parameters)
        return OPTIMIZERS[self.params["optimizer"]](parameters, **optimizer_args)  # type: ignore[no-any-return]

    def _train_epoch(
        self,
        model: nn.Module,
        data: Dataset,
        optimizer: torch.optim.Optimizer,
        generator: torch.Generator,
        epochs: tuple[int, int],
        hooks: list[TrainingHook],
    ) -> None:
        """One epoch of optimiser steps, the hooks adding their losses and stepping after;
        ``epochs`` is this epoch's index and the training's number of epochs."""
        epoch, n_epoch = epochs
        has_batchnorm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
        order = epoch_order(len(data), generator, self._epoch_samples(len(data)))  # type: ignore[arg-type]
        unchecked = epoch == 0
        for batch in iter_batches(data, self.params["train_args"]["batch_size"], order=order):
            x, y = batch[0], batch[1]
            if has_batchnorm and len(y) == 1:
                continue  # BatchNorm cannot normalise a batch of one in train mode
            x = x.to(self.device, non_blocking=True)
            y = y.to(self.device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            if unchecked:  # the same forward pass, only its failure explained: no extra cost
                logits, embedding = fitting_forward(model, x, y, self.n_classes)
                unchecked = False
            else:
                logits, embedding = model(x)
            loss = F.cross_entropy(logits, y)
            if not hooks:  # the plain path: nothing more per batch
                loss.backward()
                optimizer.step()
                continue
            step = TrainStep(epoch, n_epoch, model, x, y, logits, embedding, loss)
            for hook in hooks:
                extra = hook.extra_loss(step)
                if extra is not None:
                    loss = loss + extra
            loss.backward()
            optimizer.step()
            for hook in hooks:
                hook.after_step(step)

    def _epoch_samples(self, n: int) -> int | None:
        """Examples per epoch (``None``: one pass): ``epoch_samples``, and with
        semi-supervised training at least ``steps_per_epoch`` batches."""
        samples: int | None = self.params.get("epoch_samples")
        semi = self.params.get("semi_supervised")
        if semi is None:
            return samples
        steps = validated(SemiSupervised, semi, "semi_supervised").steps_per_epoch
        return max(samples or 0, epoch_examples(n, self.params["train_args"]["batch_size"],
                                                steps))

    @torch.inference_mode()
    def _validation_score(self, data: Dataset, monitor: str) -> float:
        """Early stopping's score of the module on labeled ``data``, in eval mode, lower
        being better: the mean cross-entropy, or minus the accuracy."""
        model = self._trained()
        loss, correct, count = 0.0, 0, 0
        with eval_mode(model):
            for batch in iter_batches(data, self.params["test_args"]["batch_size"]):
                logits, _ = model(batch[0].to(self.device, non_blocking=True))
                y = batch[1].to(self.device, non_blocking=True)
                loss += float(F.cross_entropy(logits, y, reduction="sum"))
                correct += int((logits.argmax(dim=1) == y).sum())
                count += len(y)
        count = max(count, 1)
        return loss / count if monitor == "loss" else -correct / count

    # -- inference -----------------------------------------------------------------------

    def _trained(self) -> nn.Module:
        return require_trained(self.clf)

    def _batches(self, data: Dataset, desc: str) -> Iterable[tuple[Any, ...]]:
        """Inference batches of ``data``, with a progress bar when ``progress`` is set."""
        return inference_batches(data, self.params["test_args"]["batch_size"], desc,
                                 self.progress)

    def _outputs(self, data: Dataset, desc: str) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(logits, embedding)`` per batch of ``data`` with the module as it is."""
        model = self._trained()
        for batch in self._batches(data, desc):
            yield model(batch[0].to(self.device, non_blocking=True))

    @torch.inference_mode()
    def predict(self, data: Dataset) -> torch.Tensor:
        """Predicted class of every example, as a CPU long tensor."""
        return self.predict_prob(data).argmax(dim=1)

    @torch.inference_mode()
    def predict_prob(self, data: Dataset) -> torch.Tensor:
        """Softmax probabilities, shape ``(N, C)``, on the CPU."""
        self._trained().eval()
        parts = [F.softmax(logits, dim=1).cpu() for logits, _ in self._outputs(data, "predict")]
        return _cat(parts)

    def predict_prob_dropout_batches(
        self, data: Dataset, n_drop: int, seed: int | None = None
    ) -> Iterator[torch.Tensor]:
        """MC-dropout probabilities batch by batch: each item has shape ``(n_drop, B, C)``.

        Only the dropout layers sample; BatchNorm stays in eval mode. With ``seed=None``
        every example of every pass gets a fresh mask
        (:class:`~deepal.nets.posterior.MCDropoutPosterior`); with a ``seed``, ``n_drop``
        consistent masks are shared by every example
        (:class:`~deepal.nets.posterior.ConsistentMCDropoutPosterior`). How a module can
        run its layers before the dropout once per batch is in
        :mod:`deepal.nets.dropout_sampling`."""
        return dropout_posterior(self, n_drop, seed).sample_batches(data)

    def predict_prob_dropout(
        self, data: Dataset, n_drop: int = 10, seed: int | None = None
    ) -> torch.Tensor:
        """Mean of ``n_drop`` MC-dropout softmax samples, shape ``(N, C)``; with a ``seed``, of
        ``n_drop`` consistent masks (see :meth:`predict_prob_dropout_batches`)."""
        batches = self.predict_prob_dropout_batches(data, n_drop, seed=seed)
        return _cat([p.mean(dim=0) for p in batches])

    def predict_prob_dropout_split(self, data: Dataset, n_drop: int = 10) -> torch.Tensor:
        """All ``n_drop`` MC-dropout softmax samples, shape ``(n_drop, N, C)``."""
        return _cat(list(self.predict_prob_dropout_batches(data, n_drop)), dim=1)

    @torch.inference_mode()
    def get_embeddings(
        self, data: Dataset, memmap: str | os.PathLike[str] | None = None
    ) -> torch.Tensor:
        """The network's embedding of every example, shape ``(N, D)``, float32 on the CPU.

        Parameters
        ----------
        data:
            The examples (items starting with the input).
        memmap:
            A file path: the embeddings are written batch by batch into a memory-mapped
            float32 file there (created or overwritten) and the returned tensor reads from it,
            so a pool whose embeddings exceed the memory can still be embedded; pages are
            loaded as they are used. ``None`` keeps them in memory.
        """
        self._trained().eval()
        if memmap is None:
            return _cat([emb.float().cpu() for _, emb in self._outputs(data, "embed")])
        n = len(data)  # type: ignore[arg-type]
        array = np.lib.format.open_memmap(
            os.fspath(memmap), mode="w+", dtype=np.float32, shape=(n, self.get_embedding_dim())
        )
        out = torch.from_numpy(array)
        start = 0
        for _, emb in self._outputs(data, "embed"):
            out[start : start + len(emb)] = emb.float().cpu()
            start += len(emb)
        array.flush()
        return out

    def get_embedding_dim(self) -> int:
        """Size of the embedding returned by :meth:`get_embeddings`."""
        module = self.clf if self.clf is not None else self.net()
        return int(module.get_embedding_dim())  # type: ignore[operator]


def weight_decay_groups(
    model: nn.Module, prefixes: list[str], parameters: Any
) -> list[dict[str, Any]]:
    """Optimiser parameter groups: the parameters of ``model`` named by ``prefixes`` keep the
    optimiser's weight decay, every other parameter (a hook's too) gets none."""
    named = dict(model.named_parameters())
    unmatched = [p for p in prefixes if not any(name.startswith(p) for name in named)]
    if unmatched:
        raise DeepALError(
            f"weight_decay_params {unmatched} name no parameter of {type(model).__name__}: "
            f"its parameters are {', '.join(named)}"
        )
    chosen = {id(t) for name, t in named.items() if any(name.startswith(p) for p in prefixes)}
    everything = list(parameters)
    return [{"params": [t for t in everything if id(t) in chosen]},
            {"params": [t for t in everything if id(t) not in chosen], "weight_decay": 0.0}]


def fitting_forward(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, n_classes: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``model(x)``, or a :class:`~deepal.errors.DeepALError` naming both sizes when the
    module does not take inputs shaped as ``x`` or its class scores do not fit ``n_classes``
    (``None``: not known) and labels ``y``.

    Examples
    --------
    >>> from deepal.nets import MLP
    >>> fitting_forward(MLP(n_features=4, n_classes=3), torch.zeros(2, 5), torch.zeros(2), 3)
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    deepal.errors.DeepALError: the network does not take the data's inputs: each example ...
    """
    try:
        output = model(x)
    except RuntimeError as error:
        raise DeepALError(
            f"the network does not take the data's inputs: each example has shape "
            f"{tuple(x.shape[1:])} ({x[0].numel()} values), but {_first_layer(model)}; build "
            f"the network for these inputs ({str(error).splitlines()[0]})"
        ) from None
    if not (isinstance(output, (tuple, list)) and len(output) == 2
            and all(isinstance(part, torch.Tensor) for part in output)):
        raise DeepALError(
            f"the network's forward must return (logits, embedding), two tensors; "
            f"{type(model).__name__} returned {type(output).__name__}: see deepal.Net"
        )
    logits, embedding = output
    scores = logits.shape[1] if logits.ndim == 2 else None
    wanted = n_classes if n_classes is not None else int(y.max()) + 1
    if scores is None or scores < wanted or (n_classes is not None and scores != n_classes):
        known = f"{n_classes} classes" if n_classes is not None else f"labels up to {wanted - 1}"
        raise DeepALError(
            f"the network gives class scores of shape {tuple(logits.shape[1:])} per batch "
            f"row, but the data has {known}: build it with n_classes={wanted}"
        )
    return logits, embedding


def _first_layer(model: nn.Module) -> str:
    """What the first layer with a known input size takes, in words."""
    for module in model.modules():
        for attribute, unit in (("in_features", "features"), ("in_channels", "channels")):
            if isinstance(getattr(module, attribute, None), int):
                return (f"its first layer ({type(module).__name__}) takes "
                        f"{getattr(module, attribute)} {unit}")
    return "the network takes another shape"


class _EarlyStopping:
    """Tracks the best validation score (lower is better) and its weights; says when to
    stop."""

    def __init__(self, patience: int) -> None:
        self.patience, self.best, self.stale = patience, float("inf"), 0
        self.weights: dict[str, torch.Tensor] | None = None

    def stop(self, score: float, model: nn.Module) -> bool:
        if score < self.best:
            self.best, self.stale = score, 0
            self.weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            self.stale += 1
        return self.stale >= self.patience

    def restore(self, model: nn.Module) -> None:
        if self.weights is not None:
            model.load_state_dict(self.weights)


def available_device(name: str | torch.device) -> torch.device:
    """The device ``name``, or a clear error when it is malformed or this machine lacks it."""
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError) as error:
        raise DeepALError(f"unknown device {name!r}: use cpu, cuda, cuda:N or mps") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeepALError(f"device {device} asked for, but CUDA is not available here: use cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise DeepALError(f"device {device} asked for, but MPS is not available here: use cpu")
    return device


def _cat(parts: list[torch.Tensor], dim: int = 0) -> torch.Tensor:
    return torch.cat(parts, dim=dim) if parts else torch.empty(0)


__all__ = [
    "DEFAULT_PARAMS", "DROPOUT_TYPES", "MONITORS", "OPTIMIZERS", "Net", "default_device",
    "eval_mode", "mc_dropout", "merge_params", "weight_decay_groups",
]
