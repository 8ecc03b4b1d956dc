"""Consistent MC dropout: ``K`` fixed dropout masks, each shared by every example.

Ordinary MC dropout (:func:`deepal.nets.net.mc_dropout`) draws a fresh mask for every example
of every forward pass, so "sample ``k``" of two examples comes from two different networks.
That is harmless for per-example scores (BALD, entropy...), but a score of several examples
at once, such as BatchBALD's joint entropy, needs sample ``k`` to be *one* network, the same
parameter draw, for the whole pool. Kirsch et al. (2019) call this consistent MC dropout.

:func:`consistent_dropout` gives each dropout module ``K`` masks, drawn once from a
:class:`torch.Generator` and reused for every batch; :attr:`ConsistentMasks.sample` picks the
one in use. Masks follow PyTorch's dropout: kept units are scaled by ``1 / (1 - p)``.

============================== ==================================================
module                         mask of sample ``k``, broadcast over the batch
============================== ==================================================
:class:`~torch.nn.Dropout`     one per feature: the input's shape without its batch
:class:`~torch.nn.Dropout1d`,  one per channel (dimension 1): ``(C, 1)``,
``Dropout2d``, ``Dropout3d``   ``(C, 1, 1)``, ``(C, 1, 1, 1)``
============================== ==================================================

Inputs must be batched (batch first). Masks are drawn lazily, at a module's first call (its
feature shape is known then), on the CPU from the generator, so a seed gives the same masks
on every device, and are then moved to the module's device; they take ``K`` times the
module's feature size; a module called twice in one forward pass applies the same mask both
times. ``AlphaDropout`` and ``FeatureAlphaDropout`` are refused with an error
naming them; dropout called as a function (``F.dropout(x, training=True)``) cannot be seen
and keeps drawing fresh masks, so use dropout modules.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from deepal.errors import DeepALError

ELEMENTWISE = (nn.Dropout,)
CHANNELWISE = (nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)
UNSUPPORTED = (nn.AlphaDropout, nn.FeatureAlphaDropout)


class ConsistentMasks:
    """``K`` dropout masks per module, drawn lazily from ``generator``.

    Parameters
    ----------
    n_samples:
        ``K``, the number of masks (networks) per module.
    generator:
        A CPU :class:`torch.Generator`; it alone decides the masks.

    Attributes
    ----------
    sample:
        The index ``k`` of the mask every module applies now (``0 <= k < K``).
    masks:
        Each module's masks, shape ``(K, *mask_shape)``, once it has been called.
    """

    def __init__(self, n_samples: int, generator: torch.Generator) -> None:
        if n_samples < 1:
            raise DeepALError(f"consistent dropout needs at least 1 sample, got {n_samples}")
        self.n_samples = n_samples
        self.generator = generator
        self.sample = 0
        self.masks: dict[nn.Module, torch.Tensor] = {}

    def apply(self, module: nn.Module, output: torch.Tensor) -> torch.Tensor:
        """``output`` (the module's identity output in eval mode) times mask :attr:`sample`."""
        if not 0 <= self.sample < self.n_samples:
            raise DeepALError(f"sample must be in [0, {self.n_samples}), got {self.sample}")
        return output * self.of(module, output)[self.sample]

    def of(self, module: nn.Module, features: torch.Tensor) -> torch.Tensor:
        """All ``K`` masks of ``module``, shape ``(K, *mask_shape)``, on ``features``' device
        and dtype; ``features`` is a batch of the module's input (only its shape after the
        batch dimension matters, so an empty batch will do). The first call for a module
        draws its masks, so a network that asks for all its masks at once
        (``forward_consistent``) must ask in the order its dropout modules run."""
        shape = _mask_shape(module, features)
        masks = self.masks.get(module)
        if masks is None:
            masks = self._draw(float(module.p), shape)  # type: ignore[arg-type]
            self.masks[module] = masks
        elif masks.shape[1:] != shape:
            raise DeepALError(
                f"{type(module).__name__} was called on features of shape "
                f"{tuple(features.shape[1:])} after {tuple(masks.shape[1:])}: consistent "
                "dropout needs one feature shape per dropout module (batch first)"
            )
        if masks.device != features.device or masks.dtype != features.dtype:
            masks = masks.to(features.device, features.dtype)
            self.masks[module] = masks
        return masks

    def _draw(self, p: float, shape: tuple[int, ...]) -> torch.Tensor:
        keep = torch.empty((self.n_samples, *shape)).bernoulli_(1.0 - p, generator=self.generator)
        return keep / (1.0 - p) if p < 1.0 else keep  # p = 1 drops everything, as PyTorch does


@contextmanager
def consistent_dropout(
    model: nn.Module, n_samples: int, generator: torch.Generator
) -> Iterator[ConsistentMasks]:
    """Within the block, every dropout module of ``model`` applies fixed mask ``k`` of ``K``.

    The dropout modules are switched to eval mode (the identity) and a forward hook multiplies
    their output by the current mask; set ``masks.sample = k`` before a forward pass to use
    network ``k``. Other modules keep their mode (use :func:`~deepal.nets.net.eval_mode` for
    BatchNorm). On exit, even after an exception, the hooks are removed and the dropout
    modules' modes restored.

    Parameters
    ----------
    model:
        The network.
    n_samples:
        ``K``.
    generator:
        The CPU generator the masks are drawn from (seed it for reproducible masks).

    Raises
    ------
    DeepALError
        If ``model`` has an alpha-dropout module, whose masks this cannot fix, or no dropout
        module at all.

    Yields
    ------
    ConsistentMasks
        The masks; its ``sample`` attribute chooses the network of the next forward passes.

    Examples
    --------
    >>> import torch
    >>> from deepal.nets import MLP
    >>> model, x = MLP(n_features=4, n_classes=2), torch.randn(3, 4)
    >>> with consistent_dropout(model, 2, torch.Generator().manual_seed(0)) as masks:
    ...     masks.sample = 1
    ...     first, again = model(x)[0], model(x)[0]
    >>> bool(torch.equal(first, again))
    True
    """
    named = list(model.named_modules())
    unsupported = [f"{name or 'the model'} ({type(m).__name__})"
                   for name, m in named if isinstance(m, UNSUPPORTED)]
    if unsupported:
        raise DeepALError(
            f"consistent MC dropout cannot fix the masks of {', '.join(unsupported)}: it handles "
            "nn.Dropout and nn.Dropout1d/2d/3d; use posterior='mc_dropout' for this network"
        )
    dropouts = [m for _, m in named if isinstance(m, ELEMENTWISE + CHANNELWISE)]
    if not dropouts:
        raise DeepALError(
            f"consistent MC dropout needs nn.Dropout layers, and {type(model).__name__} has none"
        )
    masks = ConsistentMasks(n_samples, generator)
    modes = [m.training for m in dropouts]
    handles = []
    try:
        for module in dropouts:
            module.eval()
            handles.append(module.register_forward_hook(
                lambda module, _inputs, output: masks.apply(module, output)))
        yield masks
    finally:
        for handle in handles:
            handle.remove()
        for module, mode in zip(dropouts, modes, strict=True):
            module.train(mode)


def _mask_shape(module: nn.Module, output: torch.Tensor) -> tuple[int, ...]:
    """The shape of one sample's mask: the features (dropout) or the channels (DropoutNd)."""
    if isinstance(module, CHANNELWISE):
        if output.dim() < 3:
            raise DeepALError(
                f"{type(module).__name__} got an input of shape {tuple(output.shape)}: "
                "consistent dropout needs a batch first, then channels"
            )
        return (output.shape[1],) + (1,) * (output.dim() - 2)
    if output.dim() < 2:
        raise DeepALError(
            f"{type(module).__name__} got an input of shape {tuple(output.shape)}: "
            "consistent dropout needs a batch first, then features"
        )
    return tuple(output.shape[1:])
