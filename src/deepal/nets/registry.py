"""``get_net``: the network and training parameters DeepAL's demo uses for each data set."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from torch import nn

from deepal.errors import UnknownNameError
from deepal.nets import architectures
from deepal.nets.architectures import MLP, CIFAR10_Net, MNIST_Net, ResNet18, SVHN_Net
from deepal.nets.net import Net, merge_params
from deepal.plugins import canonical_name, is_import_spec, load_object

#: Architectures by name (``--net`` on the command line).
ARCHITECTURES: dict[str, Callable[[], nn.Module]] = {
    "MNIST_Net": MNIST_Net,
    "SVHN_Net": SVHN_Net,
    "CIFAR10_Net": CIFAR10_Net,
    "MLP": MLP,
    "ResNet18": ResNet18,
    "ResNet18_1ch": partial(ResNet18, in_channels=1),
    "GalCNN": architectures.GalCNN,  # Gal et al. (2017)
    "BatchBALDCNN": architectures.BatchBALDCNN,  # Kirsch et al. (2019)
}


def _sgd(n_epoch: int, lr: float, momentum: float) -> dict[str, Any]:
    return {
        "n_epoch": n_epoch,
        "train_args": {"batch_size": 64},
        "test_args": {"batch_size": 1000},
        "optimizer": "SGD",
        "optimizer_args": {"lr": lr, "momentum": momentum},
    }


#: Per data set: the default architecture and DeepAL's training parameters.
NET_DEFAULTS: dict[str, tuple[str, dict[str, Any]]] = {
    "MNIST": ("MNIST_Net", _sgd(10, 0.01, 0.5)),
    "FashionMNIST": ("MNIST_Net", _sgd(10, 0.01, 0.5)),
    "SVHN": ("SVHN_Net", _sgd(20, 0.01, 0.5)),
    "CIFAR10": ("CIFAR10_Net", _sgd(20, 0.05, 0.3)),
    "digits": ("MLP", {
        "n_epoch": 30,
        "train_args": {"batch_size": 32},
        "test_args": {"batch_size": 1000},
        "optimizer": "Adam",
        "optimizer_args": {"lr": 0.003},
    }),
}


def get_architecture(name: str) -> Callable[[], nn.Module]:
    """An architecture by name, or a user's class given as ``package.module:ClassName``."""
    if is_import_spec(name):
        found = load_object(name)
        if not callable(found) or isinstance(found, type) and not issubclass(found, nn.Module):
            raise UnknownNameError(f"{name!r} is not a network: give a torch.nn.Module class "
                                   "(or a function returning a module) as package.module:Name")
        return found  # type: ignore[no-any-return]
    return ARCHITECTURES[canonical_name(name, list(ARCHITECTURES), "network")]


def get_net(
    name: str,
    device: str | torch.device | None = None,
    net: str | Callable[[], nn.Module] | None = None,
    params: dict[str, Any] | None = None,
    progress: bool = False,
) -> Net:
    """The :class:`Net` DeepAL's demo uses for data set ``name``.

    Parameters
    ----------
    name:
        A data set name: ``MNIST``, ``FashionMNIST``, ``SVHN``, ``CIFAR10`` or ``digits``.
    device:
        Where to train; CUDA when available by default.
    net:
        Another architecture: a name of :data:`ARCHITECTURES`, ``package.module:ClassName``,
        or a module class / zero-argument callable.
    params:
        Overrides of the data set's training parameters (merged key by key).
    progress:
        Show a progress bar while training.

    Returns
    -------
    Net
        The network and the data set's training parameters (DeepAL's, for the images).

    Examples
    --------
    >>> get_net("digits", device="cpu").params["n_epoch"]
    30
    """
    dataset = canonical_name(name, list(NET_DEFAULTS), "data set")
    default_arch, default_params = NET_DEFAULTS[dataset]
    architecture = get_architecture(net or default_arch) if not callable(net) else net
    merged = merge_params(default_params, params or {})
    return Net(architecture, merged, device=device, progress=progress)
