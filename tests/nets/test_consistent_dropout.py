"""Consistent MC dropout: sample ``k`` is one network (one mask per dropout module) for every
example of the pool, as BatchBALD's joint entropy needs (Kirsch et al., 2019)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from deepal import Data, Net
from deepal.errors import DeepALError
from deepal.nets.consistent_dropout import consistent_dropout
from deepal.nets.net import eval_mode
from deepal.nets.posterior import ConsistentMCDropoutPosterior
from deepal.scores.batchbald import joint_mutual_information
from deepal.scores.uncertainty import bald
from deepal.strategies.bald import BALDDropout
from deepal.strategies.batchbald import BatchBALD

from conftest import TinyNet


def untrained_net(batch_size: int = 16, head_scale: float = 1.0, seed: int = 0) -> Net:
    """A Net around a freshly initialised TinyNet (no training needed to sample from it)."""
    torch.manual_seed(seed)
    module = TinyNet()
    with torch.no_grad():
        module.head.weight.mul_(head_scale)
        module.head.bias.mul_(head_scale)
    net = Net(TinyNet, {"test_args": {"batch_size": batch_size}}, device="cpu")
    net.clf = module
    return net


def pool_of(x: torch.Tensor) -> Data:
    """An unlabeled pool holding the rows of ``x``, in order."""
    return Data(x.numpy(), None, n_classes=3)


def samples_of(net: Net, data: Data, n_drop: int, seed: int | None) -> torch.Tensor:
    _, pool = data.get_unlabeled_data()
    return torch.cat(list(net.predict_prob_dropout_batches(pool, n_drop, seed=seed)), dim=1)


# -- one network per sample ---------------------------------------------------------------------


def test_identical_inputs_get_identical_samples_in_any_position_and_batch() -> None:
    torch.manual_seed(1)
    x = torch.randn(40, 4) * 2
    x[37] = x[3]  # batches of 16: positions 3 and 37 are in the first and the third batch
    data = pool_of(x)
    net = untrained_net(batch_size=16)
    consistent = samples_of(net, data, 10, seed=7)
    assert consistent.shape == (10, 40, 3)
    torch.testing.assert_close(consistent[:, 37], consistent[:, 3], rtol=0, atol=1e-6)
    # The batching does not matter: the masks are drawn once and reused for every batch.
    whole = samples_of(untrained_net(batch_size=1000), data, 10, seed=7)
    torch.testing.assert_close(whole, consistent, rtol=0, atol=1e-6)
    # Fresh masks (the old mode) give each copy its own networks.
    fresh = samples_of(net, data, 10, seed=None)
    assert (fresh[:, 37] - fresh[:, 3]).abs().max() > 0.05
    # Sample k differs from sample k' (K networks, not one).
    assert (consistent[0] - consistent[1]).abs().max() > 0.05


@pytest.mark.parametrize(("module", "shape", "mask_shape"), [
    (nn.Dropout(0.3), (3, 50, 40), (50, 40)),
    (nn.Dropout1d(0.3), (3, 400, 5), (400, 1)),
    (nn.Dropout2d(0.3), (3, 400, 2, 2), (400, 1, 1)),
    (nn.Dropout3d(0.3), (3, 400, 2, 1, 2), (400, 1, 1, 1)),
])
def test_masks_keep_one_minus_p_scaled_by_its_inverse(
    module: nn.Module, shape: tuple[int, ...], mask_shape: tuple[int, ...]
) -> None:
    n_samples, p = 10, 0.3
    x = torch.ones(shape)
    generator = torch.Generator().manual_seed(0)
    with consistent_dropout(module, n_samples, generator) as masks:
        outputs = []
        for k in range(n_samples):
            masks.sample = k
            outputs.append(module(x))
    out = torch.stack(outputs)  # (K, *shape)
    assert masks.masks[module].shape == (n_samples, *mask_shape)
    values = out.unique()
    assert len(values) == 2 and values[0] == 0.0
    assert values[1].item() == pytest.approx(1 / (1 - p), rel=1e-6)
    # One mask per sample, broadcast over the batch (and over positions for DropoutNd).
    torch.testing.assert_close(out, masks.masks[module][:, None].expand_as(out))
    # Keep rate 1 - p: 4,000 mask entries, standard error 0.007; p itself would be 0.3.
    keep = (masks.masks[module] > 0).double().mean().item()
    assert keep == pytest.approx(1 - p, abs=0.03)


def test_mean_of_consistent_samples_is_the_eval_output_of_a_linear_layer() -> None:
    torch.manual_seed(0)
    linear = nn.Linear(20, 3)
    model = nn.Sequential(nn.Dropout(0.5), linear)
    x = torch.randn(5, 20)
    with torch.no_grad():
        model.eval()
        expected = model(x)
        n_samples = 4000
        with consistent_dropout(model, n_samples, torch.Generator().manual_seed(1)) as masks:
            total = torch.zeros_like(expected)
            for k in range(n_samples):
                masks.sample = k
                total += model(x)
    mean = total / n_samples
    # The standard error of the mean is about 0.01; without the 1 / (1 - p) scale the mean
    # would be W x / 2 + b, which is far from the eval output (checked: the test can fail).
    assert (expected - linear.bias).abs().max() > 0.4
    torch.testing.assert_close(mean, expected, rtol=0, atol=0.06)


# -- seeds -------------------------------------------------------------------------------------


def test_masks_are_a_function_of_the_seed_alone() -> None:
    torch.manual_seed(2)
    data = pool_of(torch.randn(30, 4))
    net = untrained_net()
    torch.manual_seed(100)
    first = samples_of(net, data, 6, seed=11)
    torch.manual_seed(200)  # torch's global generator plays no part
    torch.testing.assert_close(samples_of(net, data, 6, seed=11), first, rtol=0, atol=0)
    assert not torch.allclose(samples_of(net, data, 6, seed=12), first)


def test_strategy_random_state_fixes_the_masks_and_each_query_draws_new_ones() -> None:
    torch.manual_seed(2)
    data = pool_of(torch.randn(30, 4))
    runs: list[list[Any]] = []
    for random_state in (0, 0, 1):
        strategy = BALDDropout(data, untrained_net(), n_drop=6, random_state=random_state,
                               posterior="consistent_mc_dropout")
        estimate = strategy.posterior_estimate
        assert isinstance(estimate, ConsistentMCDropoutPosterior)
        run = []
        for _ in range(2):  # two queries
            strategy.query(3)
            run.append((estimate.last_seed, strategy.last_scores.copy()))
        runs.append(run)
    for (seed_a, scores_a), (seed_b, scores_b) in zip(runs[0], runs[1], strict=True):
        assert seed_a == seed_b
        np.testing.assert_array_equal(scores_a, scores_b)
    assert runs[0][0][0] != runs[0][1][0]  # per query
    assert runs[2][0][0] != runs[0][0][0]
    assert not np.allclose(runs[2][0][1], runs[0][0][1])


# -- restoring the model -----------------------------------------------------------------------


class MixedNet(nn.Module):
    """Dropout of both kinds, BatchNorm, and a switch that raises inside the forward pass."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.drop2d = nn.Dropout2d(0.5)
        self.norm = nn.BatchNorm1d(16)
        self.drop = nn.Dropout(0.5)
        self.head = nn.Linear(16, 3)
        self.fail = False

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.norm(self.drop2d(self.conv(x)).flatten(1))
        if self.fail:
            raise RuntimeError("boom")
        return self.head(self.drop(h)), h

    def get_embedding_dim(self) -> int:
        return 16


def modes(model: nn.Module) -> list[bool]:
    return [m.training for m in model.modules()]


def hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


def test_modes_and_forwards_are_restored_even_after_an_exception() -> None:
    torch.manual_seed(0)
    model = MixedNet()
    model.train()
    model.drop.eval()  # a mixed state, to be restored exactly
    before = modes(model)
    x = torch.randn(4, 1, 4, 4)
    with pytest.raises(RuntimeError, match="boom"):
        with eval_mode(model), consistent_dropout(model, 3, torch.Generator()) as masks:
            assert not model.drop2d.training and not model.norm.training
            model(x)
            model.fail = True
            masks.sample = 1
            model(x)
    assert modes(model) == before and hooks(model) == 0
    model.fail = False
    # Dropout2d samples fresh masks again: two training passes differ.
    assert not torch.equal(model(x)[1], model(x)[1])


def test_a_pool_scan_stopped_early_restores_the_net() -> None:
    torch.manual_seed(0)
    net = Net(MixedNet, {"test_args": {"batch_size": 2}}, device="cpu")
    net.clf = MixedNet()
    before = modes(net.clf)
    x = torch.randn(6, 1, 4, 4)
    data = Data(x.numpy(), None, n_classes=3)
    batches = net.predict_prob_dropout_batches(data.get_unlabeled_data()[1], 4, seed=0)
    assert next(batches).shape == (4, 2, 3)
    assert hooks(net.clf) == 2
    batches.close()
    assert modes(net.clf) == before and hooks(net.clf) == 0


def test_unsupported_or_missing_dropout_is_a_clear_error() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.AlphaDropout(0.2), nn.Dropout(0.5))
    with pytest.raises(DeepALError, match=r"1 \(AlphaDropout\).*posterior='mc_dropout'"):
        with consistent_dropout(model, 2, torch.Generator()):
            pass
    assert hooks(model) == 0 and modes(model) == [True] * 4
    with pytest.raises(DeepALError, match="needs nn.Dropout layers"):
        with consistent_dropout(nn.Linear(4, 4), 2, torch.Generator()):
            pass
    drop = nn.Dropout(0.5)
    with pytest.raises(DeepALError, match="one feature shape per dropout module"):
        with consistent_dropout(drop, 2, torch.Generator()):
            drop(torch.ones(3, 5))
            drop(torch.ones(3, 6))
    with pytest.raises(DeepALError, match="a batch first, then channels"):
        with consistent_dropout(nn.Dropout2d(0.5), 2, torch.Generator()) as masks:
            masks.apply(nn.Dropout2d(0.5), torch.ones(3, 5))


# -- BatchBALD ---------------------------------------------------------------------------------


def duplicated_pool() -> Data:
    """Ten points, then the same ten again: example ``i + 10`` is a copy of example ``i``."""
    torch.manual_seed(0)
    x = torch.randn(10, 4) * 2
    return pool_of(torch.cat([x, x]))


def test_two_copies_are_one_question_only_with_consistent_masks() -> None:
    # Confident networks (huge logits): each mask gives one-hot probabilities, so a network
    # labels both copies alike and I(y_i, y_copy; w) = H(y_i) = I(y_i; w) (Kirsch et al.'s
    # duplicate argument). With fresh masks the copies look like two independent questions.
    data = duplicated_pool()
    net = untrained_net(batch_size=7, head_scale=1e4)
    consistent = samples_of(net, data, 20, seed=5)
    torch.manual_seed(1)
    fresh = samples_of(net, data, 20, seed=None)
    mi = bald(consistent)
    assert (mi[:10] > 0.3).sum() >= 5  # the networks disagree on most points
    for i in range(10):
        pair = joint_mutual_information(consistent[:, [i, i + 10]])
        assert pair == pytest.approx(mi[i].item(), abs=1e-6)
    informative = [i for i in range(10) if bald(fresh)[i] > 0.3]
    for i in informative:
        pair = joint_mutual_information(fresh[:, [i, i + 10]])
        assert pair > 1.3 * bald(fresh)[i].item()


def test_batchbald_on_a_duplicated_pool_never_picks_a_copy() -> None:
    data = duplicated_pool()
    strategy = BatchBALD(data, untrained_net(batch_size=7, head_scale=1e4), n_drop=20,
                         random_state=0)
    assert isinstance(strategy.posterior_estimate, ConsistentMCDropoutPosterior)  # the default
    picked = strategy.query(4)
    assert len({int(i) % 10 for i in picked}) == 4
    assert strategy.last_joint_mi is not None
    assert np.all(np.diff(strategy.last_joint_mi) > 0.05)  # each pick is a new question


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_consistent_masks_on_cuda_match_the_cpu() -> None:
    torch.manual_seed(1)
    data = pool_of(torch.randn(50, 4))
    cpu = samples_of(untrained_net(batch_size=16), data, 8, seed=3)
    net = untrained_net(batch_size=16)
    net.device = torch.device("cuda")
    net.clf = net.clf.to("cuda")  # type: ignore[union-attr]
    cuda = samples_of(net, data, 8, seed=3)
    assert cuda.device.type == "cpu"
    torch.testing.assert_close(cuda, cpu, rtol=0, atol=1e-5)
    x = torch.randn(3, 16, device="cuda")
    drop = nn.Dropout(0.5).cuda()
    with consistent_dropout(drop, 2, torch.Generator()) as masks:
        drop(x)
    assert masks.masks[drop].device.type == "cuda"
