"""MC-dropout samples of a module's class probabilities, batch by batch.

The mechanism behind the dropout posterior estimates (:mod:`deepal.nets.posterior`): only the
dropout layers sample, BatchNorm stays in eval mode, and each batch yields ``(n_drop, B, C)``
probabilities on the CPU, so a consumer reduces it as it comes and memory stays
``O(n_drop * B * C)`` whatever the pool size.

With ``seed=None`` every example of every pass gets a fresh mask (torch's global generator).
With a ``seed``, dropout is consistent (:mod:`deepal.nets.consistent_dropout`): ``n_drop``
masks per dropout module are drawn from ``torch.Generator().manual_seed(seed)`` and sample
``k`` applies mask ``k`` to every example of every batch, so it is one network for the whole
of the data.

A module that defines ``forward_deterministic(x)`` (every layer before the first dropout) and
``forward_sampled(h)`` (the rest, returning ``(logits, embedding)``), with ``forward(x) ==
forward_sampled(forward_deterministic(x))``, has the first part run once per batch and only
the second ``n_drop`` times: the samples are the same, the cost of the layers before the
dropout is paid once (all the built-in networks do this). A dropout layer run inside
``forward_deterministic`` raises :class:`~deepal.errors.DeepALError`.

With a ``seed``, a module may go further and define ``forward_consistent(h, masks)``,
returning the logits of all ``n_drop`` samples at once, shape ``(n_drop, B, C)``, from ``h =
forward_deterministic(x)`` and the :class:`~deepal.nets.consistent_dropout.ConsistentMasks`
(``masks.of(module, features)`` gives a dropout module's ``n_drop`` masks). It must equal
``forward_sampled`` under each mask in turn; :class:`~deepal.nets.architectures.BatchBALDCNN`
uses it to share the cost of a convolution between the samples.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from deepal.data.batches import iter_batches
from deepal.errors import DeepALError
from deepal.nets.consistent_dropout import ConsistentMasks, consistent_dropout
from deepal.nets.modes import DROPOUT_TYPES, eval_mode, mc_dropout

Forward = Callable[[Any], tuple[torch.Tensor, torch.Tensor]]


def inference_batches(
    data: Dataset, batch_size: int, desc: str, progress: bool = False
) -> Iterable[tuple[Any, ...]]:
    """The batches of ``data`` in order, with a progress bar named ``desc`` if ``progress``."""
    return tqdm(  # type: ignore[no-any-return]
        iter_batches(data, batch_size), desc=desc, leave=False, disable=not progress,
        total=-(-len(data) // batch_size),  # type: ignore[arg-type]
    )


@torch.inference_mode()
def dropout_sample_batches(
    model: nn.Module,
    batches: Iterable[tuple[Any, ...]],
    n_drop: int,
    device: torch.device,
    seed: int | None = None,
) -> Iterator[torch.Tensor]:
    """MC-dropout probabilities of each batch, shape ``(n_drop, B, C)``, on the CPU.

    Parameters
    ----------
    model:
        The trained module; it must have dropout modules.
    batches:
        Batches whose first item is the input.
    n_drop:
        Samples per example (at least 1).
    device:
        Where the module runs.
    seed:
        ``None`` for a fresh mask per example and pass; else the seed of ``n_drop``
        consistent masks (see the module docstring).

    Yields
    ------
    torch.Tensor
        ``(n_drop, B, C)`` softmax probabilities per batch.
    """
    if n_drop < 1:
        raise DeepALError(f"n_drop must be at least 1, got {n_drop}")
    if not any(isinstance(m, DROPOUT_TYPES) for m in model.modules()):
        raise DeepALError(
            f"MC dropout needs nn.Dropout layers, and {type(model).__name__} has none: "
            "add one (F.dropout cannot be switched on alone) or use a non-dropout strategy"
        )
    with ExitStack() as stack:
        masks: ConsistentMasks | None = None
        if seed is None:
            stack.enter_context(mc_dropout(model))
        else:
            stack.enter_context(eval_mode(model))
            generator = torch.Generator().manual_seed(seed)
            masks = stack.enter_context(consistent_dropout(model, n_drop, generator))
        deterministic, sampled = _dropout_split(model)
        all_at_once = getattr(model, "forward_consistent", None)
        for batch in batches:
            features = deterministic(batch[0].to(device, non_blocking=True))
            if masks is not None and callable(all_at_once):
                yield _all_at_once(model, all_at_once(features, masks), n_drop, len(batch[0]))
            else:
                yield _one_by_one(sampled, features, n_drop, masks)


def _one_by_one(
    sampled: Forward, features: Any, n_drop: int, masks: ConsistentMasks | None
) -> torch.Tensor:
    samples = []
    for k in range(n_drop):
        if masks is not None:
            masks.sample = k
        samples.append(F.softmax(sampled(features)[0], dim=1))
    return torch.stack(samples).cpu()


def _all_at_once(model: nn.Module, logits: torch.Tensor, n_drop: int, n: int) -> torch.Tensor:
    if logits.dim() != 3 or logits.shape[:2] != (n_drop, n):
        raise DeepALError(
            f"{type(model).__name__}.forward_consistent returned shape {tuple(logits.shape)} "
            f"for {n} examples and {n_drop} masks: it must return (n_drop, batch, classes) = "
            f"({n_drop}, {n}, classes)"
        )
    return F.softmax(logits, dim=2).cpu()


def _dropout_split(model: nn.Module) -> tuple[Callable[[torch.Tensor], Any], Forward]:
    """``model``'s layers before any dropout and the rest: its ``forward_deterministic``
    (refusing to run a dropout layer, whose one mask every sample would share) and
    ``forward_sampled`` when it has both, else nothing and its whole ``forward``."""
    deterministic = getattr(model, "forward_deterministic", None)
    sampled = getattr(model, "forward_sampled", None)
    if not (callable(deterministic) and callable(sampled)):
        return (lambda x: x), model

    def refuse(module: nn.Module, _inputs: Any) -> None:
        raise DeepALError(
            f"{type(model).__name__}.forward_deterministic ran a dropout layer "
            f"({type(module).__name__}): MC dropout runs that part once for all samples, so "
            "they would share its mask; move the layer into forward_sampled"
        )

    def guarded(x: torch.Tensor) -> Any:
        handles = [m.register_forward_pre_hook(refuse)
                   for m in model.modules() if isinstance(m, DROPOUT_TYPES)]
        try:
            return deterministic(x)
        finally:
            for handle in handles:
                handle.remove()

    return guarded, sampled
