"""The Net wrapper and the networks."""

from deepal.nets.architectures import MLP, CIFAR10_Net, MNIST_Net, ResNet18, SVHN_Net
from deepal.nets.net import DEFAULT_PARAMS, Net, mc_dropout

__all__ = [
    "CIFAR10_Net", "DEFAULT_PARAMS", "MLP", "MNIST_Net", "Net", "ResNet18", "SVHN_Net",
    "mc_dropout",
]
