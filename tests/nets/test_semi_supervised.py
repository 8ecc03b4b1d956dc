"""Semi-supervised training: the pseudo-label mask and loss on hand-made logits, the unlabeled
inputs read batch by batch, and training with the option through a Net and a Strategy."""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pytest
import torch
from torch import nn

from deepal import Data, Net, RandomSampling, seed_everything
from deepal.data.registry import get_dataset
from deepal.errors import DeepALError
from deepal.nets import MLP
from deepal.nets.hooks import TrainingHook, cycle_batches
from deepal.nets.registry import get_net
from deepal.nets.semi_supervised import (
    PoolInputs,
    SemiSupervisedHook,
    UnlabeledPool,
    epoch_examples,
    pseudo_label_loss,
    pseudo_labels,
)

from conftest import TinyNet, blobs

# -- the mask and the loss -----------------------------------------------------------------


def test_the_pseudo_label_is_the_most_probable_class_kept_at_or_above_the_threshold():
    logits = torch.log(torch.tensor([[0.96, 0.04], [0.3, 0.7], [0.5, 0.5], [0.15, 0.85]]))
    labels, mask = pseudo_labels(logits, 0.9)
    assert labels.tolist() == [0, 1, 0, 1]
    assert mask.tolist() == [True, False, False, False]
    _, at_half = pseudo_labels(torch.zeros(1, 2), 0.5)  # exactly 0.5: kept
    _, above_half = pseudo_labels(torch.zeros(1, 2), 0.5000001)
    assert at_half.tolist() == [True] and above_half.tolist() == [False]
    _, everything = pseudo_labels(logits, 0.0)
    assert everything.all()


def test_pseudo_labels_carry_no_gradient():
    logits = torch.randn(4, 3, requires_grad=True)
    labels, mask = pseudo_labels(logits, 0.1)
    assert not labels.requires_grad and not mask.requires_grad


def test_the_loss_is_the_masked_cross_entropy_over_all_rows():
    # Row 0: log 2; row 1: p(class 1) = 1/4, so log 4; row 2 is masked out.
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0], [2.0, 1.0]], requires_grad=True)
    loss = pseudo_label_loss(logits, torch.tensor([0, 1, 0]), torch.tensor([True, True, False]))
    assert float(loss.detach()) == pytest.approx((math.log(2) + math.log(4)) / 3)
    loss.backward()
    assert logits.grad is not None
    assert logits.grad[2].abs().sum() == 0 and logits.grad[:2].abs().sum() > 0


def test_the_loss_is_zero_when_no_pseudo_label_is_confident_or_there_are_no_rows():
    logits = torch.randn(5, 3, requires_grad=True)
    none = pseudo_label_loss(logits, torch.zeros(5, dtype=torch.long), torch.zeros(5, dtype=bool))
    assert float(none.detach()) == 0.0 and none.requires_grad
    empty = pseudo_label_loss(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long),
                              torch.zeros(0, dtype=bool))
    assert float(empty) == 0.0


def test_an_epoch_makes_at_least_the_steps_asked_for():
    assert epoch_examples(10, 4, 25) == 100
    assert epoch_examples(1000, 4, 25) == 1000  # more labels than that: one pass


# -- the unlabeled inputs --------------------------------------------------------------------


def test_pool_inputs_read_the_inputs_of_their_indices_without_labels():
    x, y = blobs(30, seed=0)
    data = Data(x, y)
    inputs = PoolInputs(data, np.array([3, 7, 11, 20]))
    batch = inputs.get_batch(torch.tensor([2, 0]))
    assert len(batch) == 2  # (x, index): no label
    np.testing.assert_array_equal(batch[0].numpy(), x[[11, 3]])
    assert len(inputs) == 4 and len(inputs[1]) == 2


def test_the_strategys_unlabeled_pool_follows_the_labels():
    x, y = blobs(30, seed=0)
    data = Data(x, y)
    current = UnlabeledPool(data)
    assert len(current()) == 30
    data.label(np.arange(10))
    assert len(current()) == 20


# -- training -----------------------------------------------------------------------------


def images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """8x8 one-channel images of 3 classes: a bright band at a class's rows, and noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(0.0, 0.1, size=(n, 1, 8, 8)).astype(np.float32)
    for c in range(3):
        x[y == c, :, 2 * c + 1 : 2 * c + 3, 1:7] += 1.0
    return x, y


class Counter(TrainingHook):
    def __init__(self) -> None:
        self.steps = 0

    def after_step(self, step) -> None:
        self.steps += 1


def image_net(**semi) -> Net:
    return Net(partial(MLP, n_features=64, n_classes=3, hidden=32, embedding_dim=16),
               {"n_epoch": 2, "train_args": {"batch_size": 4}, "optimizer": "Adam",
                "optimizer_args": {"lr": 0.01},
                "semi_supervised": {"mu": 2, "steps_per_epoch": 5, **semi}}, device="cpu")


def train_on_images(net: Net, seed: int = 0) -> tuple[Data, RandomSampling]:
    x, y = images(60, seed=1)
    data = Data(x, y, n_classes=3)
    data.initialize_labels(6, random_state=0)
    seed_everything(seed)
    strategy = RandomSampling(data, net)
    strategy.train()
    return data, strategy


def test_fixmatch_takes_a_weak_view_for_targets_and_a_strong_view_for_the_loss():
    net = image_net(threshold=0.0)
    seen: list[tuple[int, bool]] = []
    original = SemiSupervisedHook._targets

    def recording(self, model, x):
        handle = model.register_forward_hook(
            lambda _m, inputs, _o: seen.append((len(inputs[0]), torch.is_grad_enabled())))
        try:
            return original(self, model, x)
        finally:
            handle.remove()

    SemiSupervisedHook._targets = recording  # type: ignore[method-assign]
    try:
        train_on_images(net)
    finally:
        SemiSupervisedHook._targets = original  # type: ignore[method-assign]
    # Per step: the weak views without a graph, then the strong views with one (mu * B = 8).
    assert seen[:2] == [(8, False), (8, True)]
    assert len(seen) == 2 * 2 * 5


def test_an_epoch_makes_steps_per_epoch_steps_with_few_labels():
    net = image_net()
    counter = Counter()
    net.training_hooks.append(counter)
    train_on_images(net)
    assert counter.steps == 2 * 5
    assert net.training_hooks == [counter]  # the option's hook lives for one training only


def test_semi_supervised_training_is_deterministic_under_the_seed():
    first = train_on_images(image_net())[1].net.clf
    again = train_on_images(image_net())[1].net.clf
    other = train_on_images(image_net(), seed=1)[1].net.clf
    assert first is not None and again is not None and other is not None
    for a, b in zip(first.parameters(), again.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert any(not torch.equal(a, b)
               for a, b in zip(first.parameters(), other.parameters(), strict=True))


def test_the_unlabeled_loss_changes_the_training():
    trained = train_on_images(image_net(threshold=0.0))[1].net.clf
    unweighted = train_on_images(image_net(threshold=0.0, weight=0.0))[1].net.clf
    assert trained is not None and unweighted is not None
    assert any(not torch.equal(a, b)
               for a, b in zip(trained.parameters(), unweighted.parameters(), strict=True))


def test_the_unlabeled_examples_never_enter_the_labeled_set():
    net = image_net(threshold=0.0)
    x, y = images(60, seed=1)
    data = Data(x, y, n_classes=3)
    data.initialize_labels(6, random_state=0)
    before = data.labeled_idxs.copy()
    RandomSampling(data, net).train()
    np.testing.assert_array_equal(data.labeled_idxs, before)


def test_a_net_with_the_option_but_no_unlabeled_inputs_says_how_to_give_them():
    net = image_net()
    x, y = images(8, seed=1)
    data = Data(x, y, n_classes=3)
    data.initialize_labels(8, random_state=0)
    with pytest.raises(DeepALError, match="unlabeled_inputs"):
        net.train(data.get_labeled_data()[1])
    net.unlabeled_inputs = lambda: data.get_inputs(np.arange(8))
    net.train(data.get_labeled_data()[1])  # a user's own unlabeled inputs
    assert net.clf is not None


def test_a_fully_labeled_pool_trains_on_the_labels_alone():
    net = image_net(threshold=0.0)
    x, y = images(12, seed=1)
    data = Data(x, y, n_classes=3)
    data.initialize_labels(12, random_state=0)
    RandomSampling(data, net).train()
    assert net.clf is not None


def test_pseudo_labelling_of_vectors_uses_one_forward_pass_of_the_examples():
    x, y = blobs(60, seed=3)
    data = Data(x, y, n_classes=3)
    data.initialize_labels(6, random_state=0)
    net = Net(TinyNet, {"n_epoch": 1, "train_args": {"batch_size": 4},
                        "semi_supervised": {"method": "fixmatch", "mu": 3,
                                            "steps_per_epoch": 2, "threshold": 0.0}},
              device="cpu")
    sizes: list[int] = []
    strategy = RandomSampling(data, net)
    seed_everything(0)
    original = net.net
    net.net = lambda: _recording(original(), sizes)
    strategy.train()
    assert sizes == [4, 12, 4, 12]  # labeled batch, then its unlabeled batch, twice


def _recording(model: nn.Module, sizes: list[int]) -> nn.Module:
    model.register_forward_hook(lambda _m, inputs, _o: sizes.append(len(inputs[0])))
    return model


@pytest.mark.parametrize("method", ["pseudo_label", "fixmatch"])
def test_a_few_labels_of_digits_train_with_the_unlabeled_pool(method):
    seed_everything(0)
    data = get_dataset("digits")
    if method == "fixmatch":  # digits as 8x8 images, so that they are augmented
        data = Data(data.X_train.reshape(-1, 1, 8, 8), data.Y_train,
                    data.X_test.reshape(-1, 1, 8, 8), data.Y_test)
    data.initialize_labels(30, random_state=0)
    before = data.labeled_idxs.copy()
    net = get_net("digits", device="cpu", params={
        "n_epoch": 5, "semi_supervised": {"method": method, "threshold": 0.7, "mu": 2,
                                          "steps_per_epoch": 20}})
    confident: list[tuple[int, int]] = []
    original = SemiSupervisedHook.on_train_end
    SemiSupervisedHook.on_train_end = (  # type: ignore[method-assign]
        lambda self, *_: confident.append((self.confident, self.seen)))
    try:
        strategy = RandomSampling(data, net)
        strategy.train()
    finally:
        SemiSupervisedHook.on_train_end = original  # type: ignore[method-assign]
    (kept, seen), = confident
    assert seen == 5 * 20 * 2 * 32 and 0 < kept <= seen
    accuracy = data.cal_test_acc(strategy.predict(data.get_test_data()))
    assert accuracy > 0.3  # ten classes: well above chance, not a tuned figure
    np.testing.assert_array_equal(data.labeled_idxs, before)
    picked = strategy.query(10)
    assert not before[picked].any()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fixmatch_trains_on_the_nets_device():
    net = image_net(threshold=0.0)
    net.device = torch.device("cuda")
    _, strategy = train_on_images(net)
    assert strategy.net.clf is not None
    assert all(p.device.type == "cuda" for p in strategy.net.clf.parameters())


def test_full_cycled_batches_all_have_the_batch_size():
    x, _ = blobs(10, seed=0)
    data = Data(x, None, n_classes=3)
    sizes = [len(b[0]) for b, _ in zip(cycle_batches(data.get_inputs(np.arange(10)), 4,
                                                     torch.Generator().manual_seed(0),
                                                     full=True), range(6), strict=False)]
    assert sizes == [4] * 6
    small = cycle_batches(data.get_inputs(np.arange(3)), 4, full=True)
    assert len(next(small)[0]) == 3  # fewer than a batch: all of them


def test_a_net_given_the_pool_can_still_be_pickled():
    import pickle

    x, y = blobs(20, seed=0)
    data = Data(x, y)
    data.initialize_labels(5, random_state=0)
    net = Net(TinyNet, {"n_epoch": 1}, device="cpu")
    RandomSampling(data, net)
    copy = pickle.loads(pickle.dumps(net))
    assert len(copy.unlabeled_inputs()) == 15
