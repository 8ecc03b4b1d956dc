"""The adversarial margin strategies: the BIM and DeepFool attacks on hand-made models whose
distances to the decision boundary are known, batching, the iteration cap, input bounds, the
model left as found, and the query contract on a pool with no labels for its unlabeled part."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from deepal import Data, Net, image_handler
from deepal.errors import DeepALError
from deepal.resources import torch_threads
from deepal.scores.adversarial import (
    bim_perturbation_norms,
    dataset_perturbation_norms,
    deepfool_perturbation_norms,
)
from deepal.strategies.adversarial_bim import AdversarialBIM
from deepal.strategies.adversarial_deepfool import AdversarialDeepFool
from deepal.strategies.base import Strategy

EPSILON = 1e-4  # DeepFool's default overshoot of |f'_k|
STRATEGIES = [AdversarialBIM, AdversarialDeepFool]


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with torch_threads(1):
        yield


# -- hand-made models --------------------------------------------------------------------------


class Linear(nn.Module):
    """Logits ``x @ W.T + b`` with given weights; ``forward`` returns ``(logits, x)``.

    Every input seen is recorded in ``seen`` (to check bounds and count forward passes)."""

    def __init__(self, weight: Any, bias: Any, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.fc = nn.Linear(len(weight[0]), len(weight), dtype=dtype)
        with torch.no_grad():
            self.fc.weight.copy_(torch.as_tensor(weight, dtype=dtype))
            self.fc.bias.copy_(torch.as_tensor(bias, dtype=dtype))
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.seen.append(x.detach().clone())
        return self.fc(x.flatten(1)), x.flatten(1)

    def get_embedding_dim(self) -> int:
        return self.fc.in_features


class MLP(nn.Module):
    """A small nonlinear classifier with dropout (so eval mode matters)."""

    def __init__(self, dim_in: int = 4, n_classes: int = 3, dtype: torch.dtype = torch.float64):
        super().__init__()
        self.fc1 = nn.Linear(dim_in, 16, dtype=dtype)
        self.drop = nn.Dropout(0.5)
        self.fc2 = nn.Linear(16, n_classes, dtype=dtype)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = torch.tanh(self.fc1(x))
        return self.fc2(self.drop(emb)), emb

    def get_embedding_dim(self) -> int:
        return 16


def binary_distance(weight: np.ndarray, bias: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Exact distance of each row of ``x`` to the boundary of a 2-class linear model."""
    w, b = weight[1] - weight[0], bias[1] - bias[0]
    return np.abs(x @ w + b) / np.linalg.norm(w)


def multiclass_distance(weight: np.ndarray, bias: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Exact distance of each row of ``x`` to where its predicted class stops winning: the
    nearest of the hyperplanes ``f_k = f_k0``, since that region is their intersection."""
    logits = x @ weight.T + bias
    k0 = logits.argmax(axis=1)
    dists = np.full(len(x), np.inf)
    for k in range(len(weight)):
        w = weight[k] - weight[k0]
        gap = np.abs(logits[:, k] - logits[np.arange(len(x)), k0])
        norm = np.linalg.norm(w, axis=1)
        usable = (k != k0) & (norm > 0)
        dists[usable] = np.minimum(dists[usable], gap[usable] / norm[usable])
    return dists


W2 = np.array([[0.5, -1.0], [-1.5, 2.0]])
B2 = np.array([0.3, -0.2])
W3 = np.array([[1.0, 0.0, 0.5], [-0.5, 1.0, 0.0], [0.0, -1.0, 1.5]])
B3 = np.array([0.0, 0.2, -0.1])


# -- DeepFool against the analytic distance ----------------------------------------------------


def test_deepfool_norm_is_the_distance_to_a_linear_boundary() -> None:
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(40, 2)))
    model = Linear(W2, B2)
    sq_norms, flipped = deepfool_perturbation_norms(model, x)
    assert flipped.all()
    # One step crosses the boundary, overshooting it by epsilon / ||w||.
    expected = binary_distance(W2, B2, x.numpy()) + EPSILON / np.linalg.norm(W2[1] - W2[0])
    np.testing.assert_allclose(sq_norms.sqrt().numpy(), expected, rtol=1e-9)
    assert len(model.seen) == 2  # the first forward, then the check after the one step


def test_deepfool_norm_is_the_distance_to_the_nearest_of_several_classes() -> None:
    x = torch.from_numpy(np.random.default_rng(1).normal(size=(60, 3)))
    sq_norms, flipped = deepfool_perturbation_norms(Linear(W3, B3), x)
    assert flipped.all()
    exact = multiclass_distance(W3, B3, x.numpy())
    found = sq_norms.sqrt().numpy()
    largest_overshoot = EPSILON / min(
        np.linalg.norm(W3[i] - W3[j]) for i in range(3) for j in range(3) if i != j
    )
    assert (found >= exact - 1e-9).all()
    assert (found <= exact + largest_overshoot + 1e-9).all()


def test_deepfool_max_classes_equals_all_classes_when_it_covers_them() -> None:
    x = torch.from_numpy(np.random.default_rng(2).normal(size=(50, 3)))
    full = deepfool_perturbation_norms(Linear(W3, B3), x)[0]
    torch.testing.assert_close(deepfool_perturbation_norms(Linear(W3, B3), x, max_classes=3)[0],
                               full, rtol=0, atol=0)


def test_deepfool_max_classes_looks_only_at_the_likeliest_classes() -> None:
    # Four classes along one axis; class 3 has the nearest boundary in distance but the
    # lowest logit. With every class considered the step goes to class 3's boundary; with the
    # top two only (classes 0 and 1), to class 1's, which is farther.
    weight = np.array([[0.0, 0.0], [-1.0, 0.0], [0.0, -2.0], [0.0, 40.0]])
    bias = np.array([0.0, -0.5, -3.0, -8.0])
    x = torch.tensor([[0.0, 0.0]], dtype=torch.float64)  # logits 0, -0.5, -3, -8
    full = deepfool_perturbation_norms(Linear(weight, bias), x)[0].sqrt().item()
    top2 = deepfool_perturbation_norms(Linear(weight, bias), x, max_classes=2)[0].sqrt().item()
    assert full == pytest.approx(8 / 40 + EPSILON / 40)
    assert top2 == pytest.approx(0.5 + EPSILON)
    with pytest.raises(ValueError):
        deepfool_perturbation_norms(Linear(weight, bias), x, max_classes=1)
    with pytest.raises(DeepALError):
        AdversarialDeepFool(Data(x.numpy(), [0], n_classes=4), Net(nn.Identity), max_classes=1)


def test_deepfool_skips_a_class_it_cannot_reach() -> None:
    # Class 2 copies class 0, so w_2 - w_0 = 0 for an example predicted 0: no NaN, and the
    # attack goes to class 1's boundary instead.
    weight = np.array([[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0]])
    bias = np.zeros(3)
    x = torch.tensor([[0.4, 1.0], [0.1, -2.0]], dtype=torch.float64)
    sq_norms, flipped = deepfool_perturbation_norms(Linear(weight, bias), x)
    assert flipped.all() and torch.isfinite(sq_norms).all()
    np.testing.assert_allclose(sq_norms.sqrt().numpy(), [0.4 + EPSILON / 2, 0.1 + EPSILON / 2])


def test_deepfool_strategy_picks_the_points_nearest_the_boundary_first() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(30, 2)).astype(np.float32)
    data = Data(x, None, n_classes=2)
    data.label([0, 1, 2], [0, 1, 0])
    net = Net(lambda: Linear(W2, B2, dtype=torch.float32), {"test_args": {"batch_size": 7}},
              device="cpu")
    net.clf = net.net()  # a "trained" net with known weights
    strategy = AdversarialDeepFool(data, net, random_state=0)
    picked = strategy.query(5)
    idxs = np.flatnonzero(~data.labeled_idxs)
    distance = binary_distance(W2, B2, x[idxs].astype(np.float64))
    np.testing.assert_array_equal(picked, idxs[np.argsort(distance)[:5]])
    assert strategy.last_scores is not None
    np.testing.assert_allclose(np.sqrt(strategy.last_scores), distance, rtol=1e-4, atol=1e-4)


# -- BIM ---------------------------------------------------------------------------------------


def test_bim_takes_sign_steps_until_the_prediction_changes() -> None:
    # The boundary is x_0 = 0 and the gradient has no x_1 part, so BIM moves along x_0 by
    # 0.05 a step: a point at x_0 = a flips after ceil(|a| / 0.05) steps.
    weight, bias = np.array([[-1.0, 0.0], [1.0, 0.0]]), np.zeros(2)
    a = np.array([0.12, -0.33, 0.51, 1.22, -0.07, 0.03])
    x = torch.from_numpy(np.stack([a, np.ones_like(a)], axis=1))
    sq_norms, flipped = bim_perturbation_norms(Linear(weight, bias), x, eps=0.05)
    assert flipped.all()
    steps = np.ceil(np.abs(a) / 0.05)
    np.testing.assert_allclose(sq_norms.numpy(), (steps * 0.05) ** 2, rtol=1e-9)


def test_bim_strategy_picks_the_example_nearest_the_boundary() -> None:
    weight, bias = np.array([[-1.0, 0.0], [1.0, 0.0]]), np.zeros(2)
    x = np.array([[0.9, 0.0], [-0.6, 3.0], [0.02, -1.0], [1.4, 0.5], [-0.31, 0.2], [2.0, 2.0]],
                 dtype=np.float32)
    data = Data(x, None, n_classes=2)
    data.label([5], [1])
    net = Net(lambda: Linear(weight, bias, dtype=torch.float32), device="cpu")
    net.clf = net.net()
    strategy = AdversarialBIM(data, net, random_state=0)
    assert strategy.query(1).tolist() == [2]
    assert strategy.query(3).tolist() == [2, 4, 1]


# -- batching does not change results ----------------------------------------------------------


def one_at_a_time(
    attack: Callable[..., tuple[torch.Tensor, torch.Tensor]], model: nn.Module, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    results = [attack(model, x[i : i + 1]) for i in range(len(x))]
    return torch.cat([r[0] for r in results]), torch.cat([r[1] for r in results])


@pytest.mark.parametrize(
    "attack",
    [
        lambda m, x: bim_perturbation_norms(m, x, eps=0.05, max_iter=30),
        lambda m, x: deepfool_perturbation_norms(m, x, max_iter=20),
    ],
    ids=["bim", "deepfool"],
)
def test_batched_attack_equals_one_example_at_a_time(
    attack: Callable[..., tuple[torch.Tensor, torch.Tensor]]
) -> None:
    torch.manual_seed(0)
    model = MLP()
    model.train()  # the attack must switch dropout off itself
    x = torch.randn(25, 4, dtype=torch.float64)
    sq_norms, flipped = attack(model, x)
    single_norms, single_flipped = one_at_a_time(attack, model, x)
    assert flipped.sum() >= 10  # the comparison covers examples that really moved
    torch.testing.assert_close(flipped, single_flipped)
    torch.testing.assert_close(sq_norms, single_norms, rtol=1e-9, atol=0.0)
    assert torch.isinf(sq_norms[~flipped]).all() and torch.isfinite(sq_norms[flipped]).all()


# -- the iteration cap -------------------------------------------------------------------------


class Unflippable(nn.Module):
    """Class 1 always wins: ``[tanh(sum x), 5]``, though the gradient is not zero."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.calls += 1
        f0 = torch.tanh(x.flatten(1).sum(dim=1))
        return torch.stack([f0, torch.full_like(f0, 5.0)], dim=1), x


@pytest.mark.parametrize("kind", ["constant", "unflippable"])
@pytest.mark.parametrize("attack", [bim_perturbation_norms, deepfool_perturbation_norms])
def test_attack_stops_after_max_iter_with_inf_scores(
    attack: Callable[..., tuple[torch.Tensor, torch.Tensor]], kind: str
) -> None:
    if kind == "constant":  # logits that do not depend on the input: a zero gradient
        model: nn.Module = Linear(np.zeros((3, 4)), [0.0, 1.0, 0.5])
    else:
        model = Unflippable()
    x = torch.randn(6, 4, dtype=torch.float64)
    sq_norms, flipped = attack(model, x, max_iter=7)
    assert not flipped.any()
    assert torch.isinf(sq_norms).all() and not torch.isnan(sq_norms).any()
    calls = len(model.seen) if isinstance(model, Linear) else model.calls
    assert calls == 8  # the first forward and one after each of the 7 steps


def test_max_iter_zero_takes_no_step_and_bad_arguments_raise() -> None:
    model = Linear(W2, B2)
    sq_norms, flipped = bim_perturbation_norms(model, torch.zeros(3, 2, dtype=torch.float64),
                                               max_iter=0)
    assert not flipped.any() and torch.isinf(sq_norms).all() and len(model.seen) == 1
    with pytest.raises(ValueError):
        bim_perturbation_norms(model, torch.zeros(1, 2, dtype=torch.float64), max_iter=-1)
    with pytest.raises(ValueError):
        bim_perturbation_norms(model, torch.zeros(1, 2, dtype=torch.float64), eps=0.0)
    with pytest.raises(ValueError):
        deepfool_perturbation_norms(model, torch.zeros(1, 2, dtype=torch.long))


def test_empty_batch() -> None:
    sq_norms, flipped = deepfool_perturbation_norms(Linear(W2, B2), torch.zeros(0, 2))
    assert sq_norms.shape == (0,) and flipped.shape == (0,)


# -- bounds ------------------------------------------------------------------------------------


@pytest.mark.parametrize("attack", [bim_perturbation_norms, deepfool_perturbation_norms])
def test_inputs_stay_within_bounds(attack: Callable[..., tuple[torch.Tensor, torch.Tensor]]):
    # Per-feature bounds broadcast over the batch. The boundary x_0 + x_1 = 1.2 lies inside
    # the box, but the shortest way to it from many points leaves the box through x_1 = 0.5.
    weight, bias = np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([0.0, -1.2])
    low, high = torch.tensor([0.0, -0.5]), torch.tensor([1.0, 0.5])
    x = torch.rand(40, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x = low + x * (high - low)
    model = Linear(weight, bias)
    sq_norms, flipped = attack(model, x, max_iter=40, bounds=(low, high))
    seen = torch.cat(model.seen)
    assert (seen >= low).all() and (seen <= high).all()
    assert (seen[:, 1] == high[1]).any()  # the bound was really hit
    assert flipped.all()  # x_0 + x_1 reaches 1.5 inside the box, so every point can flip
    # Clamped paths are no shorter than the straight one to the boundary.
    straight = (x.sum(dim=1) - 1.2).abs() / np.sqrt(2.0)
    assert (sq_norms.sqrt() >= straight - 1e-12).all()


def test_the_norm_is_that_of_the_clamped_perturbation() -> None:
    # BIM steps (+0.05, +0.05) towards x_0 + x_1 = 1.2, but x_1 stops at its bound 0.5: two
    # steps reach (0.71, 0.5), so the perturbation applied is (0.10, 0.04), not (0.10, 0.10).
    weight, bias = np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([0.0, -1.2])
    x = torch.tensor([[0.61, 0.46]], dtype=torch.float64)
    bounds = (torch.tensor([0.0, 0.0]), torch.tensor([1.0, 0.5]))
    sq_norms, flipped = bim_perturbation_norms(Linear(weight, bias), x, bounds=bounds)
    assert flipped.all()
    np.testing.assert_allclose(sq_norms.numpy(), [0.10**2 + 0.04**2])


def test_an_example_whose_boundary_is_outside_the_box_never_flips() -> None:
    weight, bias = np.array([[0.0, 0.0], [1.0, 0.0]]), np.array([0.0, -1.5])  # at x_0 = 1.5
    x = torch.tensor([[0.2, 0.0], [0.9, 0.0]], dtype=torch.float64)
    for attack in (bim_perturbation_norms, deepfool_perturbation_norms):
        sq_norms, flipped = attack(Linear(weight, bias), x, max_iter=30, bounds=(0.0, 1.0))
        assert not flipped.any() and torch.isinf(sq_norms).all()


@pytest.mark.parametrize("cls", STRATEGIES)
def test_strategy_clamps_images_into_the_pool_input_bounds(cls: type[Strategy]) -> None:
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, size=(20, 1, 3, 3), dtype=np.uint8)
    data = Data(images, None, handler=image_handler([0.5], [0.25]), n_classes=2)
    data.label([0, 1], [0, 1])
    weight = rng.normal(size=(2, 9))
    net = Net(lambda: Linear(weight, [0.0, 0.0], dtype=torch.float32), device="cpu")
    net.clf = net.net()
    strategy = cls(data, net, random_state=0)
    strategy.query(4)
    seen = torch.cat(net.clf.seen)  # type: ignore[union-attr]
    # (0 - 0.5) / 0.25 and (1 - 0.5) / 0.25: the range of normalised uint8 pixels.
    assert seen.min() >= -2.0 and seen.max() <= 2.0


class PlainDataset(Dataset):
    """Items ``(x, index)`` and no ``input_bounds`` method: a user's own handler."""

    def __init__(self, X: Any, Y: Any = None) -> None:
        self.X = torch.as_tensor(np.asarray(X), dtype=torch.float32)

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.X[i], i


def test_a_dataset_without_input_bounds_is_attacked_unbounded() -> None:
    x = np.array([[3.0, 0.0], [-0.2, 0.0], [1.0, 0.0]], dtype=np.float32)
    model = Linear([[-1.0, 0.0], [1.0, 0.0]], [0.0, 0.0], dtype=torch.float32)
    sq_norms, flipped = dataset_perturbation_norms(
        model, PlainDataset(x), deepfool_perturbation_norms, batch_size=2, device="cpu"
    )
    assert flipped.all()
    np.testing.assert_allclose(sq_norms.sqrt().numpy(), [3.0, 0.2, 1.0], atol=1e-3)


# -- the model is left as found ----------------------------------------------------------------


@pytest.mark.parametrize("attack", [bim_perturbation_norms, deepfool_perturbation_norms])
@pytest.mark.parametrize("existing_grad", [False, True])
def test_parameters_gradients_and_modes_are_left_as_found(
    attack: Callable[..., tuple[torch.Tensor, torch.Tensor]], existing_grad: bool
) -> None:
    torch.manual_seed(1)
    model = MLP()
    model.train()
    model.fc2.eval()  # mixed modes must come back exactly
    if existing_grad:
        for p in model.parameters():
            p.grad = torch.ones_like(p)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    attack(model, torch.randn(10, 4, dtype=torch.float64), max_iter=5)
    assert model.training and model.fc1.training and model.drop.training
    assert not model.fc2.training
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), before[name])
        if existing_grad:
            torch.testing.assert_close(p.grad, torch.ones_like(p))
        else:
            assert p.grad is None


def test_attack_works_when_the_caller_disabled_gradients() -> None:
    with torch.no_grad():
        sq_norms, flipped = deepfool_perturbation_norms(Linear(W2, B2), torch.ones(2, 2).double())
    assert flipped.all() and torch.isfinite(sq_norms).all()


# -- the strategies on a pool with no labels for its unlabeled part ----------------------------


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(2, 8)
        self.drop = nn.Dropout(0.3)
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = F.relu(self.fc1(x))
        return self.fc2(self.drop(emb)), emb

    def get_embedding_dim(self) -> int:
        return 8


def trained(cls: type[Strategy], **kwargs: Any) -> Strategy:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    means = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    x = np.concatenate([m + rng.normal(scale=0.8, size=(20, 2)) for m in means])
    y = np.repeat(np.arange(3), 20)
    data = Data(x.astype(np.float32), np.full(len(x), -1), n_classes=3)
    first = rng.choice(len(x), size=9, replace=False)
    data.label(first, y[first])
    net = Net(TinyNet, {"n_epoch": 2, "train_args": {"batch_size": 4},
                        "test_args": {"batch_size": 16}, "optimizer_args": {"lr": 0.1}},
              device="cpu")
    strategy = cls(data, net, random_state=0, **kwargs)
    strategy.train()
    return strategy


@pytest.mark.parametrize("cls", STRATEGIES)
def test_strategy_returns_n_distinct_unlabeled_indices(cls: type[Strategy]) -> None:
    strategy = trained(cls)
    data = strategy.dataset
    model = strategy.net.clf
    assert model is not None
    grads = {name: None if p.grad is None else p.grad.clone()
             for name, p in model.named_parameters()}
    picked = strategy.query(7)
    assert len(picked) == 7 and len(np.unique(picked)) == 7
    assert not data.labeled_idxs[picked].any()
    assert (data.Y_train[~data.labeled_idxs] == -1).all()
    assert strategy.last_scores is not None and len(strategy.last_scores) == data.n_unlabeled
    # The picks are the smallest scores, in order (+inf last).
    unlabeled = np.flatnonzero(~data.labeled_idxs)
    scores = strategy.last_scores[np.searchsorted(unlabeled, picked)]
    assert (np.diff(scores) >= 0).all()
    assert scores[-1] <= np.sort(strategy.last_scores)[6]
    assert not model.training
    for name, p in model.named_parameters():
        if grads[name] is None:
            assert p.grad is None
        else:
            torch.testing.assert_close(p.grad, grads[name])
    everything = strategy.query(data.n_unlabeled)
    np.testing.assert_array_equal(np.sort(everything), unlabeled)


@pytest.mark.parametrize("cls", STRATEGIES)
def test_strategy_scores_do_not_depend_on_the_batch_size(cls: type[Strategy]) -> None:
    strategy = trained(cls)
    strategy.query(3)
    small = strategy.last_scores
    strategy.net.params["test_args"]["batch_size"] = 1000
    strategy.query(3)
    np.testing.assert_allclose(strategy.last_scores, small, rtol=1e-5)


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [(AdversarialBIM, {"eps": 0.0}), (AdversarialBIM, {"max_iter": 0}),
     (AdversarialDeepFool, {"max_iter": 2.5}), (AdversarialDeepFool, {"max_iter": True})],
)
def test_bad_parameters_raise(cls: type[Strategy], kwargs: dict[str, Any]) -> None:
    data = Data(np.zeros((4, 2), dtype=np.float32), None, n_classes=2)
    with pytest.raises(DeepALError):
        cls(data, Net(TinyNet, device="cpu"), **kwargs)


@pytest.mark.parametrize("cls", STRATEGIES)
def test_needs_a_trained_net(cls: type[Strategy]) -> None:
    data = Data(np.zeros((4, 2), dtype=np.float32), None, n_classes=2)
    with pytest.raises(DeepALError):
        cls(data, Net(TinyNet, device="cpu"), random_state=0).query(1)
