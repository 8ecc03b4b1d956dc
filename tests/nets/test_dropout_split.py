"""MC dropout runs a network's layers before its first dropout once per batch
(``forward_deterministic``) and only the rest once per sample (``forward_sampled``)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deepal import Data, Net
from deepal.errors import DeepALError
from deepal.nets import architectures
from deepal.nets.architectures import (
    MLP,
    BatchBALDCNN,
    CIFAR10_Net,
    GalCNN,
    MNIST_Net,
    ResNet18,
    SVHN_Net,
)

# -- the reordered networks compute exactly what DeepAL's order computes ----------------------


def mnist_original(m: MNIST_Net, x: torch.Tensor) -> torch.Tensor:
    x = F.relu(F.max_pool2d(m.conv1(x), 2))
    x = F.relu(F.max_pool2d(m.conv2_drop(m.conv2(x)), 2))
    return m.fc2(m.fc1_drop(F.relu(m.fc1(x.flatten(1)))))


def svhn_original(m: SVHN_Net, x: torch.Tensor) -> torch.Tensor:
    x = F.relu(m.conv1(x))
    x = F.relu(F.max_pool2d(m.conv2(x), 2))
    x = F.relu(F.max_pool2d(m.conv3_drop(m.conv3(x)), 2))
    x = F.relu(m.fc1(x.flatten(1)))
    return m.fc3(m.fc2_drop(F.relu(m.fc2(x))))


def cifar_original(m: CIFAR10_Net, x: torch.Tensor) -> torch.Tensor:
    x = F.relu(m.conv1(x))
    x = F.relu(F.max_pool2d(m.conv2(x), 2))
    x = F.relu(F.max_pool2d(m.conv3_drop(m.conv3(x)), 2))
    return m.fc2(m.fc1_drop(F.relu(m.fc1(x.flatten(1)))))


def batchbald_original(m: BatchBALDCNN, x: torch.Tensor) -> torch.Tensor:
    x = F.relu(F.max_pool2d(m.conv1_drop(m.conv1(x)), 2))
    x = F.relu(F.max_pool2d(m.conv2_drop(m.conv2(x)), 2))
    return m.fc2(F.relu(m.fc1_drop(m.fc1(x.flatten(1)))))


@pytest.mark.parametrize("cls, original, shape", [
    (MNIST_Net, mnist_original, (6, 1, 28, 28)),
    (SVHN_Net, svhn_original, (6, 3, 32, 32)),
    (CIFAR10_Net, cifar_original, (6, 3, 32, 32)),
    (BatchBALDCNN, batchbald_original, (6, 1, 28, 28)),
])
@pytest.mark.parametrize("training", [True, False])
def test_channel_dropout_after_pooling_gives_the_original_outputs_and_masks(
    cls, original, shape, training
):
    torch.manual_seed(0)
    model = cls().train(training)
    x = torch.randn(shape)
    torch.manual_seed(1)
    expected = original(model, x)
    torch.manual_seed(1)
    logits, _ = model(x)
    assert torch.equal(logits, expected)
    if training:  # the masks really are random: another seed changes the output
        torch.manual_seed(2)
        assert not torch.equal(model(x)[0], expected)


# -- the split is used, and used correctly --------------------------------------------------


class Unsplit(nn.Module):
    """The same network behind a plain ``forward``: MC dropout runs all of it every sample."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inner(x)


def net_around(module: nn.Module, batch_size: int = 4) -> Net:
    net = Net(lambda: module, {"test_args": {"batch_size": batch_size}}, device="cpu")
    net.clf = module
    return net


def pool(shape: tuple[int, ...], seed: int = 0) -> Data:
    torch.manual_seed(seed)
    return Data(torch.rand(shape).numpy(), None, n_classes=10)


def mc_samples(net: Net, data: Data, n_drop: int, seed: int | None) -> torch.Tensor:
    _, unlabeled = data.get_unlabeled_data()
    torch.manual_seed(123)  # the global generator of fresh masks
    return torch.cat(list(net.predict_prob_dropout_batches(unlabeled, n_drop, seed=seed)), dim=1)


@pytest.mark.parametrize("cls, shape", [
    (MNIST_Net, (10, 1, 28, 28)), (BatchBALDCNN, (10, 1, 28, 28)), (GalCNN, (10, 1, 28, 28)),
    (SVHN_Net, (10, 3, 32, 32)), (CIFAR10_Net, (10, 3, 32, 32)), (MLP, (10, 64)),
    (ResNet18, (10, 3, 32, 32)),
])
@pytest.mark.parametrize("seed", [None, 7], ids=["fresh masks", "consistent masks"])
def test_split_samples_equal_full_forward_samples(cls, shape, seed):
    torch.manual_seed(0)
    module = cls().eval()
    data = pool(shape)
    split = mc_samples(net_around(module), data, n_drop=3, seed=seed)
    full = mc_samples(net_around(Unsplit(module)), data, n_drop=3, seed=seed)
    assert split.shape == (3, 10, 10)
    torch.testing.assert_close(split, full, rtol=0, atol=1e-6)
    assert not torch.allclose(split[0], split[1])  # the samples differ: dropout is on


def test_layers_before_the_dropout_run_once_per_batch_not_once_per_sample():
    module = MNIST_Net().eval()
    calls = {"conv1": 0, "fc1": 0}
    module.conv1.register_forward_hook(lambda *_: calls.__setitem__("conv1", calls["conv1"] + 1))
    module.fc1.register_forward_hook(lambda *_: calls.__setitem__("fc1", calls["fc1"] + 1))
    mc_samples(net_around(module, batch_size=4), pool((10, 1, 28, 28)), n_drop=5, seed=None)
    assert calls == {"conv1": 3, "fc1": 15}  # 3 batches; 5 samples of each


class DropoutTooEarly(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_sampled(self.forward_deterministic(x))

    def forward_deterministic(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(x)

    def forward_sampled(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.fc(x), x


def test_a_dropout_in_the_deterministic_part_is_a_clear_error():
    net = net_around(DropoutTooEarly())
    with pytest.raises(DeepALError, match="forward_deterministic ran a dropout layer"):
        mc_samples(net, pool((5, 4)), n_drop=2, seed=None)
    # the refusal is only for MC dropout: plain prediction runs the whole forward
    assert net.predict_prob(pool((5, 4)).get_unlabeled_data()[1]).shape == (5, 3)


# -- forward_consistent: all consistent samples at once --------------------------------------


@pytest.mark.parametrize("n_examples, n_drop, batch_size", [
    (70, 30, 70),  # steps of 32 examples and 25 samples, both with a partial last step
    (5, 3, 2),
])
@pytest.mark.parametrize("steps", ["this device's", "an accelerator's"])
def test_batchbald_cnn_computes_all_consistent_samples_at_once_exactly(
    n_examples, n_drop, batch_size, steps, monkeypatch
):
    if steps == "an accelerator's":  # one step of 128 examples x 100 samples, run on the CPU
        accelerator = architectures.consistent_steps(torch.device("cuda"))
        monkeypatch.setattr(architectures, "consistent_steps", lambda device: accelerator)
    torch.manual_seed(0)
    module = BatchBALDCNN().eval()
    calls = []
    module.conv2.register_forward_hook(lambda *_: calls.append(1))  # the per-sample path's conv
    data = pool((n_examples, 1, 28, 28))
    at_once = mc_samples(net_around(module, batch_size), data, n_drop, seed=3)
    assert calls == []  # conv2 never ran as a module: the samples came from forward_consistent
    one_by_one = mc_samples(net_around(Unsplit(module), batch_size), data, n_drop, seed=3)
    assert len(calls) == n_drop * -(-n_examples // batch_size)
    assert at_once.shape == (n_drop, n_examples, 10)
    torch.testing.assert_close(at_once, one_by_one, rtol=0, atol=1e-6)


def test_forward_consistent_is_only_for_consistent_masks():
    torch.manual_seed(0)
    module = BatchBALDCNN().eval()
    calls = []
    module.conv2.register_forward_hook(lambda *_: calls.append(1))
    mc_samples(net_around(module), pool((4, 1, 28, 28)), n_drop=3, seed=None)
    assert len(calls) == 3  # fresh masks: every example its own, one pass per sample


class WrongShape(DropoutTooEarly):
    """A network whose forward_consistent returns one sample instead of n_drop."""

    def forward_deterministic(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def forward_consistent(self, h: torch.Tensor, masks) -> torch.Tensor:
        return self.fc(h * masks.of(self.drop, h)[0])


def test_a_forward_consistent_of_the_wrong_shape_is_a_clear_error():
    with pytest.raises(DeepALError, match=r"forward_consistent returned shape \(5, 3\) for 5 "
                                          r"examples and 2 masks: it must return \(n_drop, "
                                          r"batch, classes\)"):
        mc_samples(net_around(WrongShape(), batch_size=8), pool((5, 4)), n_drop=2, seed=1)
