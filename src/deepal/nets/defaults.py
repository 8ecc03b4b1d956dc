"""Default networks for a user's own data: a small CNN for images of any size, an MLP for
features and text embeddings."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from deepal.data.pool import Data
from deepal.errors import DeepALError, UnknownNameError
from deepal.nets.architectures import MLP
from deepal.nets.net import Net, merge_params


class SmallCNN(nn.Module):
    """Two convolution blocks and an adaptive pool, so any image size from 8 pixels works.

    Parameters
    ----------
    n_classes, in_channels:
        Output classes and input channels.
    width:
        Channels of the first convolution (the second has twice as many).
    embedding_dim:
        Size of the embedding before the classifier (with dropout between them).
    """

    channels_last_on_cpu = True  # flattens with flatten(): see deepal.placement

    def __init__(self, n_classes: int = 10, in_channels: int = 3, width: int = 32,
                 embedding_dim: int = 128, dropout: float = 0.3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.fc = nn.Linear(2 * width * 16, embedding_dim)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(embedding_dim, n_classes)
        self.embedding_dim = embedding_dim

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        embedding = F.relu(self.fc(F.adaptive_avg_pool2d(x, 4).flatten(1)))
        return self.head(self.drop(embedding)), embedding

    def get_embedding_dim(self) -> int:
        return self.embedding_dim


#: Training parameters of the default networks (Adam: robust without tuning).
DEFAULT_OWN_PARAMS: dict[str, Any] = {
    "n_epoch": 20,
    "train_args": {"batch_size": 32},
    "test_args": {"batch_size": 500},
    "optimizer": "Adam",
    "optimizer_args": {"lr": 1e-3},
}


def is_image_pool(data: Data) -> bool:
    """Whether the pool holds images: a 4-d ``(N, C, H, W)`` array."""
    return len(getattr(data.X_train, "shape", ())) == 4


#: Names of the default architectures ("auto": chosen by the pool's shape).
DEFAULT_ARCHITECTURES = ("auto", "SmallCNN", "MLP")


def default_architecture(data: Data, name: str = "auto") -> Callable[[], nn.Module]:
    """:class:`SmallCNN` for images, :class:`~deepal.nets.MLP` for anything else (flattened).

    ``name`` asks for one of them (:data:`DEFAULT_ARCHITECTURES`) instead of the choice by
    shape; an MLP takes images too, flattened."""
    shape = tuple(data.X_train.shape)
    if name not in DEFAULT_ARCHITECTURES:
        raise UnknownNameError(f"unknown default network {name!r}: choose one of "
                               f"{', '.join(DEFAULT_ARCHITECTURES)}")
    if name == "SmallCNN" and len(shape) != 4:
        raise DeepALError(f"SmallCNN needs images, and this pool's items have shape "
                          f"{shape[1:]}: choose the MLP (--net MLP)")
    if len(shape) == 4 and name != "MLP":
        return partial(SmallCNN, n_classes=data.n_classes, in_channels=int(shape[1]))
    n_features = 1
    for size in shape[1:]:
        n_features *= int(size)
    return partial(MLP, n_features=n_features, n_classes=data.n_classes)


def default_net(
    data: Data,
    device: str | torch.device | None = None,
    params: dict[str, Any] | None = None,
    progress: bool = False,
    architecture: str = "auto",
) -> Net:
    """A :class:`~deepal.Net` suited to ``data``: its shape decides the architecture.

    Parameters
    ----------
    data:
        The pool (its input shape and ``n_classes`` are read; never its labels).
    device:
        Where to train; CUDA when available by default.
    params:
        Overrides of :data:`DEFAULT_OWN_PARAMS` (e.g. ``{"n_epoch": 5}``).
    progress:
        Show a progress bar while training.
    architecture:
        ``auto`` (by the pool's shape), ``SmallCNN`` or ``MLP``.

    Returns
    -------
    Net
        A small CNN for images, an MLP otherwise, with Adam and 20 epochs unless ``params``
        say otherwise.

    Examples
    --------
    ``net = default_net(from_image_folder("photos/", class_names=["cat", "dog"]))``
    """
    merged = merge_params(DEFAULT_OWN_PARAMS, params or {})
    return Net(default_architecture(data, architecture), merged, device=device, progress=progress)
