"""The Net wrapper and the networks."""

from deepal.nets.architectures import (
    MLP,
    BatchBALDCNN,
    CIFAR10_Net,
    GalCNN,
    MNIST_Net,
    ResNet18,
    SVHN_Net,
)
from deepal.nets.consistent_dropout import consistent_dropout
from deepal.nets.net import DEFAULT_PARAMS, Net, mc_dropout

__all__ = [
    "BatchBALDCNN", "CIFAR10_Net", "DEFAULT_PARAMS", "GalCNN", "MLP", "MNIST_Net", "Net",
    "ResNet18", "SVHN_Net",
    "consistent_dropout", "mc_dropout",
]
