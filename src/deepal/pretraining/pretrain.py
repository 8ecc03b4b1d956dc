"""Self-supervised features of a pool: contrastive pretraining of a network body on the
pool's inputs, run once per pool and settings and cached on disk (see
:mod:`deepal.pretraining.cache`)."""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from deepal.config.base import validated
from deepal.config.pretraining import PretrainingSettings
from deepal.data.batches import iter_batches
from deepal.data.pool import Data
from deepal.errors import DeepALError, first_line
from deepal.nets.augment import contrastive_view, feature_view
from deepal.nets.contrastive import View, contrastive_train, embed
from deepal.placement import placed
from deepal.pretraining.cache import (
    cache_key,
    checked_cache_dir,
    entry_folder,
    inputs_digest,
    load_entry,
    save_entry,
)

#: Inputs per forward pass when the features are computed.
EMBED_BATCH = 1000


@dataclass(frozen=True)
class Pretrained:
    """The result of :func:`pretrain`.

    Parameters
    ----------
    features:
        float32 ``(n_pool, d)``: the encoder's embedding of every pool input.
    encoder_state:
        The pretrained network's ``state_dict`` (its classifier layer untrained): load it
        into a module of the same architecture to start a classifier from it.
    folder:
        The cache entry's folder.
    computed:
        Whether this call pretrained (``False``: read from the cache).

    Examples
    --------
    >>> import tempfile
    >>> import deepal
    >>> data = deepal.get_dataset("digits")
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     result = pretrain(data, "MLP", {"epochs": 1, "max_examples": 128},
    ...                       cache_dir=folder, device="cpu")
    >>> module = deepal.nets.MLP()
    >>> module.load_state_dict(result.encoder_state)
    <All keys matched successfully>
    """

    features: np.ndarray
    encoder_state: dict[str, torch.Tensor]
    folder: Path
    computed: bool


def pretrain(
    data: Data,
    net: str | None = None,
    settings: PretrainingSettings | Mapping[str, Any] | None = None,
    *,
    dataset: str = "pool",
    cache_dir: str | os.PathLike[str] | None = None,
    device: str | torch.device | None = None,
) -> Pretrained:
    """Pretrain architecture ``net`` on the inputs of ``data``'s pool with SimCLR's
    contrastive loss (Chen et al., 2020), or read the result of an earlier identical call
    from the cache.

    Only the pool's inputs are read, never a label. The result depends on the inputs, the
    architecture's name and ``settings`` (except ``cache_dir`` and ``init_classifier``):
    those make the cache key. Pretraining runs under its own seed (``settings.seed``) and
    leaves torch's global random state as it found it.

    Parameters
    ----------
    data:
        The pool.
    net:
        An architecture name of :data:`deepal.nets.registry.ARCHITECTURES` or
        ``package.module:ClassName``; ``None``: ``settings.net``. Built without arguments,
        it must take the pool's inputs.
    settings:
        A :class:`~deepal.config.pretraining.PretrainingSettings` or a dict of its keys;
        ``None``: the defaults.
    dataset:
        A name for the cache entry's folder (the key does not depend on it).
    cache_dir:
        The cache folder; ``None``: ``settings.cache_dir``, else the default (see
        :func:`deepal.pretraining.cache.default_cache_dir`).
    device:
        Where to pretrain; CUDA when available by default.

    Returns
    -------
    Pretrained
        The features, the encoder's weights and where they are cached.

    Raises
    ------
    DeepALError
        A bad setting, an unknown architecture, a cache folder that is a file, or a network
        that does not take the inputs; raised before anything is written.

    Examples
    --------
    >>> import tempfile
    >>> import deepal
    >>> data = deepal.get_dataset("digits")
    >>> settings = {"epochs": 1, "max_examples": 256}
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     first = pretrain(data, "MLP", settings, cache_dir=folder, device="cpu")
    ...     again = pretrain(data, "MLP", settings, cache_dir=folder, device="cpu")
    >>> first.features.shape, first.computed, again.computed
    ((1347, 50), True, False)
    """
    from deepal.nets.net import available_device, default_device
    from deepal.nets.registry import get_architecture

    checked = _settings(settings)
    name = net or checked.net
    if name is None:
        raise DeepALError("pretrain needs an architecture: pass net (e.g. 'MNIST_Net') or set "
                          "settings net")
    return pretrain_module(data, get_architecture(name), name, checked, dataset=dataset,
                           cache_dir=cache_dir if cache_dir is not None else checked.cache_dir,
                           device=available_device(device) if device is not None
                           else default_device())


def pretrain_features(
    data: Data,
    net: str | None = None,
    settings: PretrainingSettings | Mapping[str, Any] | None = None,
    **options: Any,
) -> np.ndarray:
    """The self-supervised features of ``data``'s pool: :func:`pretrain`'s ``features``,
    ready for the ``features`` option of TypiClust and ProbCover.

    Parameters
    ----------
    data, net, settings:
        As for :func:`pretrain`.
    **options:
        ``dataset``, ``cache_dir``, ``device``, as for :func:`pretrain`.

    Returns
    -------
    numpy.ndarray
        float32 ``(n_pool, d)``, one row per pool example.

    Examples
    --------
    >>> import tempfile
    >>> import deepal
    >>> data = deepal.get_dataset("digits")
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     features = pretrain_features(data, "MLP", {"epochs": 1, "max_examples": 256},
    ...                                  cache_dir=folder, device="cpu")
    >>> features.shape, features.dtype
    ((1347, 50), dtype('float32'))
    """
    return pretrain(data, net, settings, **options).features


def pretrain_module(
    data: Data,
    builder: Callable[[], nn.Module],
    net_name: str,
    settings: PretrainingSettings,
    *,
    dataset: str,
    cache_dir: str | os.PathLike[str] | None,
    device: torch.device,
) -> Pretrained:
    """:func:`pretrain` with the architecture given as a zero-argument ``builder`` and the
    ``net_name`` that stands for it in the cache key (what an experiment calls)."""
    folder_root = checked_cache_dir(cache_dir)
    key = cache_key(inputs_digest(data), net_name, settings.key_settings())
    folder = entry_folder(folder_root, dataset, key)
    # Under its own seed, and leaving the caller's random state as it was, so a run that
    # finds the cache continues exactly as one that pretrained.
    with torch.random.fork_rng(devices=_cuda_devices(device)):
        torch.manual_seed(settings.seed)
        cached = load_entry(folder, key, data.n_pool)
        if cached is not None and _fits(builder, cached.encoder_state):
            return Pretrained(cached.features, cached.encoder_state, folder, computed=False)
        if cached is not None:
            warnings.warn(f"pretraining cache {folder}: its encoder weights do not fit "
                          f"{net_name}; computing it again", stacklevel=2)
        torch.manual_seed(settings.seed)
        start = time.perf_counter()
        encoder, losses = _train(data, builder, net_name, settings, device)
        features = embed(encoder, data.get_inputs(np.arange(data.n_pool)), EMBED_BATCH,
                         device, normalize=settings.normalize)
    if not np.isfinite(features).all():
        raise DeepALError("pretraining diverged (features hold NaN or infinite values): "
                          "lower the pretraining lr or raise temperature")
    state = {k: v.detach().cpu().clone() for k, v in encoder.state_dict().items()}
    save_entry(folder, features, state, {
        "key": key, "dataset": dataset, "net": net_name, "n_pool": data.n_pool,
        "dim": int(features.shape[1]), "settings": settings.key_settings(),
        "seconds": round(time.perf_counter() - start, 3), "epoch_losses": losses,
        "device": str(device)})
    return Pretrained(features, state, folder, computed=True)


def _settings(settings: PretrainingSettings | Mapping[str, Any] | None) -> PretrainingSettings:
    if isinstance(settings, PretrainingSettings):
        return settings
    if settings is not None and not isinstance(settings, Mapping):
        raise DeepALError(f"settings must be a dict of pretraining settings, got "
                          f"{type(settings).__name__}")
    return validated(PretrainingSettings, settings or {}, "pretraining settings")


def _train(data: Data, builder: Callable[[], nn.Module], net_name: str,
           settings: PretrainingSettings, device: torch.device) -> tuple[nn.Module, list[float]]:
    """The encoder, built and trained on (a subset of) the pool's inputs."""
    generator = torch.Generator().manual_seed(settings.seed)
    encoder = placed(_built(builder, net_name), device)
    idxs = np.arange(data.n_pool)
    if settings.max_examples is not None and settings.max_examples < data.n_pool:
        rng = np.random.default_rng(settings.seed)
        idxs = np.sort(rng.choice(data.n_pool, settings.max_examples, replace=False))
    inputs = data.get_inputs(idxs)
    sample = next(iter_batches(inputs, 2))[0]
    _check_forward(encoder, sample, net_name, device)
    view = _view(sample, settings)
    losses = contrastive_train(
        encoder, inputs, view, epochs=settings.epochs, batch_size=settings.batch_size,
        temperature=settings.temperature, projection_dim=settings.projection_dim,
        optimizer_args={"lr": settings.lr, "weight_decay": settings.weight_decay},
        generator=generator, device=device)
    return encoder, losses


def _view(sample: torch.Tensor, settings: PretrainingSettings) -> View:
    """Random crops and jitter for images ``(N, C, H, W)``, masking and noise otherwise."""
    if sample.dim() == 4:
        return lambda x, g: contrastive_view(x, g, min_scale=settings.min_scale,
                                             flip=settings.flip, jitter=settings.jitter)
    return lambda x, g: feature_view(x, g)


def _built(builder: Callable[[], nn.Module], net_name: str) -> nn.Module:
    module = builder()
    if not isinstance(module, nn.Module) or not hasattr(module, "get_embedding_dim"):
        raise DeepALError(f"{net_name} does not build a network with get_embedding_dim(): "
                          "see deepal.Net for the contract")
    return module


def _check_forward(encoder: nn.Module, sample: torch.Tensor, net_name: str,
                   device: torch.device) -> None:
    """One pass on a tiny batch, so that a network that does not take the inputs fails with
    one clear error before training."""
    try:
        with torch.no_grad():
            output = encoder.eval()(sample.to(device))
    except Exception as error:  # noqa: BLE001 - a user's network may fail in any way
        raise DeepALError(f"{net_name} does not take the pool's inputs of shape "
                          f"{tuple(sample.shape[1:])} ({first_line(error)}): choose a network "
                          "for these inputs") from None
    if not (isinstance(output, (tuple, list)) and len(output) == 2
            and isinstance(output[1], torch.Tensor) and output[1].dim() == 2):
        raise DeepALError(f"{net_name} must return (logits, embedding) with an embedding of "
                          "shape (batch, d): see deepal.Net for the contract")


def _fits(builder: Callable[[], nn.Module], state: dict[str, torch.Tensor]) -> bool:
    """Whether the cached weights load into the architecture (a user's class may have
    changed under the same name)."""
    try:
        builder().load_state_dict(state)
    except RuntimeError:
        return False
    return True


def _cuda_devices(device: torch.device) -> list[int]:
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]
