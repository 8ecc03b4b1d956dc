"""Channels-last weights on the CPU: only for modules that allow it, the same outputs up to
rounding, and weights that load into either layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import deepal
from deepal.labeling.model_file import model_record
from deepal.nets import BatchBALDCNN, CIFAR10_Net, GalCNN, MNIST_Net, ResNet18, SVHN_Net
from deepal.nets.defaults import SmallCNN
from deepal.placement import placed

CNNS = [(MNIST_Net, (1, 28, 28)), (GalCNN, (1, 28, 28)), (BatchBALDCNN, (1, 28, 28)),
        (SVHN_Net, (3, 32, 32)), (CIFAR10_Net, (3, 32, 32)), (ResNet18, (3, 32, 32)),
        (SmallCNN, (3, 20, 20))]


class ViewNet(nn.Module):
    """A DeepAL-style user network that flattens with ``view``: channels-last would break it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 5)
        self.conv2 = nn.Conv2d(4, 4, 3)
        self.fc = nn.Linear(4 * 10 * 10, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.conv2(F.max_pool2d(self.conv1(x), 2))
        h = h.view(-1, 4 * 10 * 10)
        return self.fc(h), h

    def get_embedding_dim(self) -> int:
        return 4 * 10 * 10


def _conv_weights(module: nn.Module) -> list[torch.Tensor]:
    return [p for p in module.parameters() if p.dim() == 4]


@pytest.mark.parametrize(("cls", "shape"), CNNS, ids=[c.__name__ for c, _ in CNNS])
def test_builtin_cnns_run_channels_last_with_the_same_outputs(cls, shape):
    torch.manual_seed(0)
    reference = cls().eval()
    fast = placed(cls(), "cpu").eval()
    fast.load_state_dict(reference.state_dict())
    weights = _conv_weights(fast)
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)
    assert any(not w.is_contiguous() for w in weights)  # a 1-channel kernel is both layouts
    x = torch.rand(5, *shape)
    with torch.no_grad():
        expected, got = reference(x), fast(x)
    for e, g in zip(expected, got, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-5)


def test_a_module_without_the_flag_keeps_its_layout_and_trains():
    x = torch.rand(40, 1, 28, 28)
    data = deepal.Data(x.numpy(), np.arange(40) % 10, n_classes=10)
    data.label(np.arange(20))
    net = deepal.Net(ViewNet, {"n_epoch": 1, "train_args": {"batch_size": 8}}, device="cpu")
    net.train(data.get_labeled_data()[1])  # view() would raise on channels-last activations
    assert not net.clf.conv2.weight.is_contiguous(memory_format=torch.channels_last)
    assert net.predict(data.get_unlabeled_data()[1]).shape == (20,)


def test_a_trained_net_is_channels_last_and_its_state_loads_both_ways():
    torch.manual_seed(0)
    x = torch.rand(64, 1, 28, 28)
    data = deepal.Data(x.numpy(), np.arange(64) % 10, n_classes=10)
    data.label(np.arange(32))
    net = deepal.Net(MNIST_Net, {"n_epoch": 1, "train_args": {"batch_size": 16}}, device="cpu")
    net.train(data.get_labeled_data()[1])
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in _conv_weights(net.clf))
    pool = data.get_unlabeled_data()[1]
    before = net.predict_prob(pool)

    restored = deepal.Net(MNIST_Net, {"n_epoch": 1}, device="cpu")
    restored.load_state_dict(net.state_dict())
    assert all(w.is_contiguous(memory_format=torch.channels_last)
               for w in _conv_weights(restored.clf))
    assert torch.equal(restored.predict_prob(pool), before)

    # A project's model file keeps PyTorch's default layout, for use anywhere.
    record = model_record(net, [str(c) for c in range(10)], x.numpy(), None)
    assert all(w.is_contiguous() for w in record["state_dict"].values())

    plain = MNIST_Net().eval()  # an NCHW module, e.g. on another device or in a user's code
    plain.load_state_dict(net.state_dict()["clf"])
    with torch.no_grad():
        logits = plain(torch.stack([pool[i][0] for i in range(len(pool))]))[0]
    torch.testing.assert_close(F.softmax(logits, dim=1), before, rtol=1e-4, atol=1e-5)


def test_other_devices_are_left_alone():
    module = placed(MNIST_Net(), "meta")
    assert all(w.is_contiguous() for w in _conv_weights(module))
