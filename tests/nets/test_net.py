"""Net: training, prediction, MC dropout and embeddings."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from deepal import Data, Net
from deepal.errors import DeepALError, EmptyPoolError
from deepal.nets.net import mc_dropout, merge_params

from conftest import PlainDataset, TinyNet, blobs


def test_train_learns_separable_blobs(pool: Data, tiny_net: Net):
    x, y = blobs(200, seed=5)
    pool = Data(x, y, *blobs(100, seed=6))
    pool.initialize_labels(200, random_state=0)
    tiny_net.train(pool.get_labeled_data()[1])
    accuracy = pool.cal_test_acc(tiny_net.predict(pool.get_test_data()))
    assert accuracy > 0.9


def test_prediction_shapes_and_probabilities(pool: Data, tiny_net: Net):
    tiny_net.train(pool.get_labeled_data()[1])
    _, unlabeled = pool.get_unlabeled_data()
    probs = tiny_net.predict_prob(unlabeled)
    assert probs.shape == (110, 3)
    assert torch.allclose(probs.sum(dim=1), torch.ones(110))
    assert torch.equal(tiny_net.predict(unlabeled), probs.argmax(dim=1))
    assert tiny_net.get_embeddings(unlabeled).shape == (110, tiny_net.get_embedding_dim())
    split = tiny_net.predict_prob_dropout_split(unlabeled, n_drop=4)
    assert split.shape == (4, 110, 3)
    assert not torch.allclose(split[0], split[1]), "dropout samples must differ"
    mean = tiny_net.predict_prob_dropout(unlabeled, n_drop=4)
    assert mean.shape == (110, 3) and torch.allclose(mean.sum(dim=1), torch.ones(110))


def test_deterministic_prediction_has_dropout_off(pool: Data, tiny_net: Net):
    tiny_net.train(pool.get_labeled_data()[1])
    _, unlabeled = pool.get_unlabeled_data()
    assert torch.equal(tiny_net.predict_prob(unlabeled), tiny_net.predict_prob(unlabeled))


class WithBatchNorm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 8)
        self.bn = nn.BatchNorm1d(8)
        self.drop = nn.Dropout(0.5)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        e = torch.relu(self.bn(self.lin(x)))
        return self.head(self.drop(e)), e

    def get_embedding_dim(self) -> int:
        return 8


def test_mc_dropout_switches_on_dropout_only_and_restores_modes():
    model = WithBatchNorm()
    model.train()
    model.bn.eval()  # a deliberately mixed state that must come back unchanged
    with mc_dropout(model):
        assert model.drop.training
        assert not model.bn.training and not model.lin.training and not model.training
    assert model.training and not model.bn.training and model.drop.training


def test_mc_dropout_leaves_batchnorm_statistics_alone(pool: Data):
    net = Net(WithBatchNorm, {"n_epoch": 1}, device="cpu")
    net.train(pool.get_labeled_data()[1])
    running_mean = net.clf.bn.running_mean.clone()
    net.predict_prob_dropout_split(pool.get_unlabeled_data()[1], n_drop=3)
    assert torch.equal(net.clf.bn.running_mean, running_mean)
    assert not net.clf.training


class NoDropout(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x):
        return self.lin(x), x

    def get_embedding_dim(self) -> int:
        return 4


def test_mc_dropout_without_dropout_layers_is_a_clear_error(pool: Data):
    net = Net(NoDropout, {"n_epoch": 1}, device="cpu")
    net.train(pool.get_labeled_data()[1])
    with pytest.raises(DeepALError, match="needs nn.Dropout layers"):
        net.predict_prob_dropout(pool.get_unlabeled_data()[1], n_drop=2)


def test_datasets_without_get_batch_work_through_a_dataloader():
    x, y = blobs(150, seed=3)
    data = Data(x, y, *blobs(50, seed=4), handler=PlainDataset)
    data.initialize_labels(150, random_state=0)
    net = Net(TinyNet, {"n_epoch": 10, "optimizer": "Adam", "optimizer_args": {"lr": 0.01}},
              device="cpu")
    net.train(data.get_labeled_data()[1])
    assert data.cal_test_acc(net.predict(data.get_test_data())) > 0.9


def test_training_is_reproducible_under_a_seed(pool: Data, tiny_net: Net):
    _, labeled = pool.get_labeled_data()
    _, unlabeled = pool.get_unlabeled_data()
    outputs = []
    for _ in range(2):
        torch.manual_seed(7)
        tiny_net.train(labeled)
        outputs.append(tiny_net.predict_prob(unlabeled))
    assert torch.equal(outputs[0], outputs[1])


def test_errors(pool: Data, tiny_net: Net):
    with pytest.raises(DeepALError, match="not trained"):
        tiny_net.predict(pool.get_test_data())
    empty = Data(np.zeros((3, 4), dtype=np.float32), [0, 1, 2])
    with pytest.raises(EmptyPoolError, match="no labeled examples"):
        tiny_net.train(empty.get_labeled_data()[1])
    with pytest.raises(DeepALError, match="unknown optimizer"):
        Net(TinyNet, {"optimizer": "Nesterov"})
    with pytest.raises(DeepALError, match="n_drop"):
        tiny_net.train(pool.get_labeled_data()[1])
        tiny_net.predict_prob_dropout(pool.get_test_data(), n_drop=0)


def test_merge_params_replaces_optimizer_args_whole():
    merged = merge_params(
        {"train_args": {"batch_size": 64, "x": 1}, "optimizer_args": {"lr": 0.1, "momentum": 0.5}},
        {"train_args": {"batch_size": 8}, "optimizer": "Adam", "optimizer_args": {"lr": 0.001}},
    )
    assert merged["train_args"] == {"batch_size": 8, "x": 1}
    assert merged["optimizer_args"] == {"lr": 0.001}
    net = Net(TinyNet, {"optimizer": "Adam", "optimizer_args": {"lr": 0.001}}, device="cpu")
    assert net.params["n_epoch"] == 10 and net.params["test_args"]["batch_size"] == 1000


def test_device_is_honoured(pool: Data):
    net = Net(TinyNet, {"n_epoch": 1}, device="cpu")
    net.train(pool.get_labeled_data()[1])
    assert net.device == torch.device("cpu")
    assert all(p.device.type == "cpu" for p in net.clf.parameters())


def test_a_trained_model_is_in_eval_mode_without_gradients(pool: Data, tiny_net: Net):
    tiny_net.train(pool.get_labeled_data()[1])
    assert not tiny_net.clf.training
    assert all(p.grad is None for p in tiny_net.clf.parameters())


# -- a network that does not fit the data ------------------------------------------------------

def _fit_data(n_features: int = 6, n: int = 12):
    x = torch.randn(n, n_features)
    y = torch.arange(n) % 3
    return Data(x.numpy(), y.numpy(), n_classes=3), PlainDataset(x, y)


@pytest.mark.parametrize("n_features", [3, 5, 7, 40])
def test_a_network_that_does_not_take_the_inputs_is_named_at_the_first_batch(n_features):
    from functools import partial

    from deepal.nets import MLP

    _, data = _fit_data(n_features)
    net = Net(partial(MLP, n_features=6, n_classes=3), {"n_epoch": 2}, device="cpu",
              n_classes=3)
    with pytest.raises(DeepALError) as error:
        net.train(data)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(
        f"the network does not take the data's inputs: each example has shape ({n_features},) "
        f"({n_features} values), but its first layer (Linear) takes 6 features; build the "
        "network for these inputs (mat1 and mat2 shapes cannot be multiplied"
    )
    assert net.epochs_trained == 0


@pytest.mark.parametrize("outputs", [2, 4, 10])
def test_a_strategy_s_network_with_another_number_of_classes_is_named(outputs):
    from functools import partial

    from deepal import RandomSampling
    from deepal.nets import MLP

    pool, _ = _fit_data()
    pool.initialize_labels(6, random_state=0)
    strategy = RandomSampling(pool, Net(partial(MLP, n_features=6, n_classes=outputs),
                                        {"n_epoch": 1}, device="cpu"), random_state=0)
    with pytest.raises(DeepALError) as error:
        strategy.train()
    assert str(error.value) == (
        f"the network gives class scores of shape ({outputs},) per batch row, but the data "
        "has 3 classes: build it with n_classes=3"
    )


def test_without_n_classes_the_labels_bound_the_network_s_output():
    from deepal.nets.net import fitting_forward

    model = nn.Sequential(nn.Linear(4, 2))
    model.forward = lambda x: (nn.Sequential.forward(model, x), x)  # type: ignore[method-assign]
    x = torch.zeros(3, 4)
    logits, _ = fitting_forward(model, x, torch.tensor([0, 1, 1]), None)
    assert logits.shape == (3, 2)
    with pytest.raises(DeepALError, match=r"has labels up to 4: build it with n_classes=5"):
        fitting_forward(model, x, torch.tensor([0, 4, 1]), None)
    with pytest.raises(DeepALError, match=r"shape \(2,\) per batch row, but the data has 3 cl"):
        fitting_forward(model, x, torch.tensor([0, 1, 1]), 3)


@pytest.mark.parametrize("forward", [
    lambda x: x,                      # logits alone
    lambda x: (x,),                   # a tuple of one
    lambda x: (x, x, x),              # three outputs
    lambda x: {"logits": x, "embedding": x},
    lambda x: (x, None),              # no embedding
])
def test_a_forward_that_is_not_logits_and_embedding_is_named(forward):
    from deepal.nets.net import fitting_forward

    model = nn.Linear(4, 3)
    model.forward = forward  # type: ignore[method-assign]
    with pytest.raises(DeepALError, match=r"^the network's forward must return \(logits, "
                                          r"embedding\), two tensors; Linear returned "):
        fitting_forward(model, torch.zeros(2, 4), torch.tensor([0, 1]), 3)


def test_a_fitting_network_trains_as_before():
    from functools import partial

    from deepal.nets import MLP

    _, data = _fit_data()
    net = Net(partial(MLP, n_features=6, n_classes=3), {"n_epoch": 2}, device="cpu",
              n_classes=3)
    net.train(data)
    assert net.epochs_trained == 2 and net.predict_prob(data).shape == (12, 3)
