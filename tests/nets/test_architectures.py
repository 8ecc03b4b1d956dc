"""The networks: output shapes, the embedding contract and the registry."""

from __future__ import annotations

import pytest
import torch

from deepal import get_net
from deepal.errors import UnknownNameError
from deepal.nets.architectures import MLP, CIFAR10_Net, MNIST_Net, ResNet18, SVHN_Net
from deepal.nets.registry import get_architecture


@pytest.mark.parametrize(
    "cls, shape, dim",
    [
        (MNIST_Net, (2, 1, 28, 28), 50),
        (SVHN_Net, (2, 3, 32, 32), 50),
        (CIFAR10_Net, (2, 3, 32, 32), 50),
        (MLP, (2, 64), 50),
        (ResNet18, (2, 3, 32, 32), 512),
    ],
)
def test_forward_returns_logits_and_embedding(cls, shape, dim):
    model = cls().eval()
    logits, embedding = model(torch.zeros(shape))
    assert logits.shape == (2, 10)
    assert embedding.shape == (2, dim) == (2, model.get_embedding_dim())


def test_dropout_is_a_module_so_mc_dropout_can_find_it():
    for cls in (MNIST_Net, SVHN_Net, CIFAR10_Net, MLP, ResNet18):
        assert any(isinstance(m, torch.nn.Dropout | torch.nn.Dropout2d)
                   for m in cls().modules()), cls.__name__


@pytest.mark.parametrize("name, arch", [("MNIST", "MNIST_Net"), ("fashionmnist", "MNIST_Net"),
                                        ("SVHN", "SVHN_Net"), ("CIFAR10", "CIFAR10_Net"),
                                        ("digits", "MLP")])
def test_get_net_uses_the_data_sets_network_and_params(name, arch):
    net = get_net(name, device="cpu")
    assert net.net.__name__ == arch
    assert net.params["n_epoch"] >= 1


def test_get_net_overrides_and_user_classes():
    net = get_net("MNIST", device="cpu", net="ResNet18", params={"n_epoch": 3})
    assert net.net is ResNet18 and net.params["n_epoch"] == 3
    assert net.params["optimizer_args"] == {"lr": 0.01, "momentum": 0.5}
    assert get_architecture("conftest:TinyNet").__name__ == "TinyNet"
    with pytest.raises(UnknownNameError, match="choose one of"):
        get_net("ImageNet")
    with pytest.raises(UnknownNameError, match="cannot import module"):
        get_architecture("no_such_module:Net")
    with pytest.raises(UnknownNameError, match="has no attribute"):
        get_architecture("conftest:Missing")
