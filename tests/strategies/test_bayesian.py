"""Bayesian strategies and posterior estimates: BatchBALD, variation ratio, mean STD, the
stochastic batch acquisitions and the deep-ensemble posterior, pinned to known answers."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

import deepal
from deepal import Data, Net, seed_everything
from deepal.errors import DeepALError, UnknownNameError
from deepal.nets.ensemble import EnsemblePosterior
from deepal.nets.posterior import (
    ConsistentMCDropoutPosterior,
    MCDropoutPosterior,
    PosteriorEstimate,
)
from deepal.scores import batchbald as batchbald_scores
from deepal.scores.batchbald import batchbald, joint_mutual_information
from deepal.scores.bayesian import mean_std, variation_ratio
from deepal.scores.selection import top_n
from deepal.scores.stochastic import stochastic_top_n
from deepal.scores.uncertainty import bald, entropy
from deepal.strategies.bald import BALDDropout
from deepal.strategies.batchbald import BatchBALD
from deepal.strategies.disagreement import MeanSTDDropout, VariationRatioDropout
from deepal.strategies.stochastic_bald import PowerBALD
from deepal.strategies.uncertainty import EntropySampling, MarginSampling

from conftest import TinyNet, blobs

NEW = ["VariationRatioDropout", "MeanSTDDropout", "BatchBALD", "PowerBALD", "SoftmaxBALD",
       "SoftRankBALD"]


def brute_force_joint_mi(samples: torch.Tensor) -> float:
    """``I(y_1..y_t; w)`` by looping over every label configuration, for the tests."""
    n_samples, n_examples, n_classes = samples.shape
    p = samples.double()
    joint_entropy = 0.0
    for config in itertools.product(range(n_classes), repeat=n_examples):
        prob = float(np.mean([np.prod([float(p[k, i, c]) for i, c in enumerate(config)])
                              for k in range(n_samples)]))
        joint_entropy -= prob * math.log(prob) if prob > 0 else 0.0
    conditional = sum(float(entropy(p[:, i]).mean()) for i in range(n_examples))
    return joint_entropy - conditional


def dirichlet(k: int, n: int, c: int, seed: int, alpha: float = 0.5) -> torch.Tensor:
    torch.manual_seed(seed)
    return torch.distributions.Dirichlet(torch.full((c,), alpha)).sample((k, n))


# -- BatchBALD: the kernel ----------------------------------------------------------------------


def test_batchbald_does_not_count_one_question_three_times() -> None:
    # Two posterior samples; each is certain, and they disagree on all three examples in
    # the same way. Alone each example has BALD log 2; together the three labels are one
    # coin flip: p(0,0,0) = p(1,1,1) = 1/2, so I(y1,y2,y3; w) = log 2, not 3 log 2.
    samples = torch.tensor([[[1.0, 0.0]] * 3, [[0.0, 1.0]] * 3])  # (K=2, N=3, C=2)
    positions, joint_mi = batchbald(samples, 3)
    assert sorted(positions.tolist()) == [0, 1, 2]
    np.testing.assert_allclose(joint_mi.numpy(), [math.log(2)] * 3, atol=1e-12)
    assert bald(samples).sum().item() == pytest.approx(3 * math.log(2))


def test_batchbald_joint_score_equals_enumeration_on_three_examples() -> None:
    samples = torch.tensor([
        [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]],
        [[0.3, 0.7], [0.7, 0.3], [0.5, 0.5]],
        [[0.5, 0.5], [0.1, 0.9], [0.8, 0.2]],
    ])  # (K=3, N=3, C=2)
    expected = brute_force_joint_mi(samples)
    _, joint_mi = batchbald(samples, 3)
    assert joint_mi[-1].item() == pytest.approx(expected, abs=1e-12)
    assert joint_mutual_information(samples) == pytest.approx(expected, abs=1e-12)
    # Every prefix is the joint score of the picks so far (greedy, submodular: never less).
    positions, _ = batchbald(samples, 3)
    for t in range(1, 4):
        assert joint_mi[t - 1].item() == pytest.approx(
            brute_force_joint_mi(samples[:, positions[:t]]), abs=1e-12)


def test_batchbald_skips_a_duplicate_that_top_n_bald_takes() -> None:
    # Examples 0 and 1 are the same question (BALD log 2 each); example 2 is a different,
    # slightly less informative one. Top-2 BALD asks the same question twice; BatchBALD not.
    a = [1.0, 1.0, 0.0, 0.0]
    b = [0.9, 0.1, 0.9, 0.1]
    p0 = torch.tensor([a, a, b, [0.5] * 4]).T  # (K=4, N=4) probability of class 0
    samples = torch.stack([p0, 1 - p0], dim=2)
    assert top_n(bald(samples), 2).tolist() == [0, 1]
    positions, _ = batchbald(samples, 2)
    assert positions.tolist() == [0, 2]


def test_batchbald_of_one_is_balds_pick() -> None:
    for seed in range(5):
        samples = dirichlet(8, 30, 4, seed)
        positions, joint_mi = batchbald(samples, 1)
        assert positions.tolist() == top_n(bald(samples), 1).tolist()
        assert joint_mi[0].item() == pytest.approx(bald(samples).max().item(), abs=1e-12)


def test_sampled_configurations_estimate_the_exact_joint_score() -> None:
    # All 12 examples are picked, so the final set is known: its exact joint score needs
    # 2^12 configurations; 1,000 sampled ones must come close.
    samples = dirichlet(16, 12, 2, seed=0)
    exact = joint_mutual_information(samples)
    _, enumerated = batchbald(samples, 12, n_configurations=2**12)
    _, sampled = batchbald(samples, 12, n_configurations=1000,
                           generator=torch.Generator().manual_seed(1))
    assert enumerated[-1].item() == pytest.approx(exact, abs=1e-9)
    assert sampled[-1].item() == pytest.approx(exact, abs=0.1)
    assert sampled[-1].item() != pytest.approx(exact, abs=1e-9)  # it did sample


def test_sum_xlogx_is_xlogy_with_zero_log_zero_and_nan_kept() -> None:
    p = torch.rand(50, 7, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    p[0, 0, :3] = 0.0
    p[1, 2, 4] = float("nan")
    got = batchbald_scores.sum_xlogx(p)
    want = torch.special.xlogy(p, p).sum(dim=-1)
    assert torch.equal(got.isnan(), want.isnan()) and int(got.isnan().sum()) == 1
    torch.testing.assert_close(got.nan_to_num(), want.nan_to_num(), rtol=1e-14, atol=0.0)
    # a row of zeros and ones has no entropy: exactly 0, not NaN from 0 * log 0
    assert float(batchbald_scores.sum_xlogx(torch.tensor([0.0, 1.0, 0.0]))) == 0.0


def test_batchbald_chunks_give_the_same_batch() -> None:
    samples = dirichlet(6, 40, 3, seed=2)
    whole = batchbald(samples, 5, n_configurations=50)
    chunked = batchbald(samples, 5, n_configurations=50, chunk_elements=10)
    assert whole[0].tolist() == chunked[0].tolist()
    torch.testing.assert_close(whole[1], chunked[1])


def test_blocks_of_configurations_give_the_same_batch_and_scores(monkeypatch) -> None:
    samples = dirichlet(12, 50, 4, seed=3)
    results = []
    for block in (10**9, 7):  # one block, then blocks of 7 (with a partial last one)
        monkeypatch.setattr(batchbald_scores, "CONFIGURATION_BLOCK", block)
        # up to 4^4 = 256 configurations enumerated, then 300 sampled from the 5th pick
        results.append(batchbald(samples, 8, n_configurations=300,
                                 generator=torch.Generator().manual_seed(2)))
    (whole_picks, whole_mi), (blocked_picks, blocked_mi) = results
    assert whole_picks.tolist() == blocked_picks.tolist()
    torch.testing.assert_close(whole_mi, blocked_mi, rtol=0, atol=1e-12)


def test_an_accelerators_step_sizes_give_the_cpu_batch(monkeypatch) -> None:
    samples = dirichlet(12, 200, 4, seed=6)
    results = []
    cpu, cuda = (batchbald_scores.step_sizes(torch.device(d)) for d in ("cpu", "cuda"))
    assert cpu != cuda
    for sizes in (cpu, cuda):  # the CUDA sizes, run on the CPU: one block of 2,000
        monkeypatch.setattr(batchbald_scores, "step_sizes", lambda device, sizes=sizes: sizes)
        results.append(batchbald(samples, 8, n_configurations=2000,
                                 generator=torch.Generator().manual_seed(7)))
    (cpu_picks, cpu_mi), (accelerator_picks, accelerator_mi) = results
    assert cpu_picks.tolist() == accelerator_picks.tolist()
    torch.testing.assert_close(cpu_mi, accelerator_mi, rtol=0, atol=1e-12)


def test_lazy_greedy_finds_the_plain_greedy_batch() -> None:
    for seed in range(3):
        samples = dirichlet(8, 60, 3, seed)
        lazy = batchbald(samples, 6, n_configurations=3**6, chunk_elements=3**6 * 3 * 4)
        plain = batchbald(samples, 6, n_configurations=3**6, lazy=False)
        assert lazy[0].tolist() == plain[0].tolist()
        torch.testing.assert_close(lazy[1], plain[1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_batchbald_on_cuda_picks_the_cpu_batch() -> None:
    samples = dirichlet(10, 80, 4, seed=4)
    for n_configurations in (4**6, 40):  # enumerated throughout; sampled from the 3rd pick
        cpu = batchbald(samples, 6, n_configurations, torch.Generator().manual_seed(5))
        cuda = batchbald(samples.cuda(), 6, n_configurations, torch.Generator().manual_seed(5))
        assert cuda[0].tolist() == cpu[0].tolist()
        torch.testing.assert_close(cuda[1], cpu[1])


# -- variation ratio and mean STD ---------------------------------------------------------------


HAND_SAMPLES = torch.tensor([  # (K=4, N=3, C=3)
    [[0.6, 0.3, 0.1], [0.8, 0.1, 0.1], [1.0, 0.0, 0.0]],
    [[0.5, 0.4, 0.1], [0.7, 0.2, 0.1], [0.0, 1.0, 0.0]],
    [[0.2, 0.7, 0.1], [0.8, 0.1, 0.1], [1.0, 0.0, 0.0]],
    [[0.1, 0.1, 0.8], [0.7, 0.2, 0.1], [0.0, 1.0, 0.0]],
])


def test_variation_ratio_by_hand() -> None:
    # Votes: example 0 -> classes 0, 0, 1, 2 (mode 2 of 4); example 1 -> all 0; example 2 ->
    # 0, 1, 0, 1 (mode 2 of 4).
    np.testing.assert_allclose(variation_ratio(HAND_SAMPLES).numpy(), [0.5, 0.0, 0.5])


def test_mean_std_by_hand() -> None:
    # Example 1: class 0 is 0.8/0.7 -> std 0.05, class 1 0.1/0.2 -> 0.05, class 2 -> 0.
    # Example 2: classes 0 and 1 flip between 1 and 0 -> std 0.5 each, class 2 -> 0.
    scores = mean_std(HAND_SAMPLES).numpy()
    np.testing.assert_allclose(scores[1:], [0.1 / 3, 1.0 / 3], rtol=1e-6)
    p0 = HAND_SAMPLES[:, 0].double()
    np.testing.assert_allclose(scores[0], p0.std(dim=0, correction=0).mean().item(), rtol=1e-12)


class HandSamples(PosteriorEstimate):
    """Stands in for a trained net's MC-dropout samples: input row ``i`` holds example
    ``i``'s ``K x C`` probabilities."""

    def __init__(self, n_samples: int, n_classes: int) -> None:
        super().__init__(cast(Any, SimpleNamespace(clf=object())))
        self.shape = self.n_samples, _ = (n_samples, n_classes)

    def sample_batches(self, data: Dataset) -> Iterator[torch.Tensor]:
        x = data.X  # type: ignore[attr-defined]
        yield x.reshape(len(x), *self.shape).transpose(0, 1)


@pytest.mark.parametrize(("cls", "expected"),
                         [(VariationRatioDropout, [0, 2]), (MeanSTDDropout, [2, 0])])
def test_disagreement_strategies_pick_by_hand(cls: type[BALDDropout], expected: list[int]) -> None:
    rows = HAND_SAMPLES.transpose(0, 1).reshape(3, -1)
    data = Data(torch.cat([rows, rows[1:2]]).numpy(), None, n_classes=3)
    data.label([3], [0])
    estimate = HandSamples(4, 3)
    strategy = cls(data, estimate.net, n_drop=4, random_state=0)
    strategy.posterior_estimate = estimate
    assert strategy.query(2).tolist() == expected


# -- stochastic batch acquisition ---------------------------------------------------------------


@pytest.mark.parametrize("mode", ["power", "softmax", "softrank"])
def test_infinite_coldness_is_top_n(mode: str) -> None:
    scores = np.random.default_rng(0).random(50)
    for beta in (math.inf, 1e12):
        picked = stochastic_top_n(scores, 10, mode, beta, np.random.default_rng(1))
        assert picked.tolist() == top_n(scores, 10).tolist()


@pytest.mark.parametrize("mode", ["power", "softmax", "softrank"])
def test_stochastic_batches_are_seed_deterministic_and_random(mode: str) -> None:
    scores = np.random.default_rng(0).random(50)
    first = stochastic_top_n(scores, 10, mode, 1.0, np.random.default_rng(7))
    assert len(set(first.tolist())) == 10
    assert stochastic_top_n(scores, 10, mode, 1.0, np.random.default_rng(7)).tolist() \
        == first.tolist()
    others = {tuple(stochastic_top_n(scores, 10, mode, 1.0, np.random.default_rng(s)))
              for s in range(5)}
    assert len(others) > 1


@pytest.mark.parametrize(
    ("mode", "scores", "p_second"),
    [
        ("power", [1.0, 3.0], 3 / 4),                     # ∝ s: 1 : 3
        ("softmax", [0.0, math.log(3.0)], 3 / 4),         # ∝ exp(s): 1 : 3
        ("softrank", [1.0, 3.0], 2 / 3),                  # ∝ 1/rank: 1/2 : 1
    ],
)
def test_stochastic_acquisition_samples_the_papers_distribution(
    mode: str, scores: list[float], p_second: float
) -> None:
    rng = np.random.default_rng(0)
    picks = [stochastic_top_n(np.array(scores), 1, mode, 1.0, rng)[0] for _ in range(4000)]
    assert np.mean(picks) == pytest.approx(p_second, abs=0.03)


# -- the posterior estimates and their strategies -----------------------------------------------


def pool_and_net(dropout: bool = True, seed: int = 0) -> tuple[Data, Net]:
    x, y = blobs(60, seed=3)
    data = Data(x, None, n_classes=3)  # every label unknown (-1) but those given below
    data.label(np.arange(12), y[:12])
    seed_everything(seed)
    module = TinyNet if dropout else NoDropoutNet
    net = Net(module, {"n_epoch": 5, "train_args": {"batch_size": 8},
                       "test_args": {"batch_size": 16}}, device="cpu")
    return data, net


class NoDropoutNet(TinyNet):
    def __init__(self) -> None:
        super().__init__()
        self.drop = nn.Identity()  # type: ignore[assignment]


def test_ensemble_trains_different_members_from_their_seeds() -> None:
    data, net = pool_and_net(dropout=False)
    strategy = BALDDropout(data, net, posterior="ensemble", n_members=3, random_state=0)
    strategy.train()
    estimate = strategy.posterior_estimate
    assert isinstance(estimate, EnsemblePosterior)
    assert len(estimate.members) == 3 and len(set(estimate.member_seeds)) == 3
    weights = [m.head.weight.detach() for m in estimate.members]
    assert not torch.equal(weights[0], weights[1]) and not torch.equal(weights[1], weights[2])
    # A member is a function of its seed alone.
    _, labeled = data.get_labeled_data()
    twin = Net(NoDropoutNet, net.params, device="cpu")
    torch.manual_seed(estimate.member_seeds[1])
    twin.train(labeled)
    torch.testing.assert_close(twin.clf.head.weight, weights[1])  # type: ignore[union-attr]
    # One sample per member; BALD works with them (the net has no dropout at all).
    _, unlabeled = data.get_unlabeled_data()
    samples = torch.cat(list(estimate.sample_batches(unlabeled)), dim=1)
    assert samples.shape == (3, 48, 3)
    member_probs = torch.stack([torch.softmax(m(unlabeled.X)[0], dim=1)  # type: ignore[attr-defined]
                                for m in estimate.members]).detach()
    torch.testing.assert_close(samples, member_probs)
    picked = strategy.query(5)
    np.testing.assert_allclose(strategy.last_scores, bald(samples).numpy(), atol=1e-6)
    assert picked.tolist() == (12 + top_n(bald(samples), 5)).tolist()  # 12 labeled first
    # The ensemble predicts with its mean.
    torch.testing.assert_close(strategy.predict_prob(unlabeled), samples.mean(dim=0))


def test_ensemble_is_deterministic_and_serves_uncertainty_strategies() -> None:
    picks = []
    for _ in range(2):
        data, net = pool_and_net(dropout=False, seed=4)
        strategy = EntropySampling(data, net, posterior="ensemble", n_members=2, random_state=0)
        strategy.train()
        _, unlabeled = data.get_unlabeled_data()
        mean = strategy.posterior_estimate.mean(unlabeled)
        picks.append(strategy.query(4).tolist())
        np.testing.assert_allclose(strategy.last_scores, entropy(mean).numpy(), rtol=1e-6)
    assert picks[0] == picks[1]


def test_estimates_by_name() -> None:
    data, net = pool_and_net()
    assert type(EntropySampling(data, net).posterior_estimate) is PosteriorEstimate
    assert isinstance(BALDDropout(data, net).posterior_estimate, MCDropoutPosterior)
    assert BatchBALD(data, net).posterior_estimate.n_samples == 20
    # BatchBALD's joint entropy needs one network per sample: consistent masks by default.
    assert isinstance(BatchBALD(data, net).posterior_estimate, ConsistentMCDropoutPosterior)
    assert type(BatchBALD(data, net, posterior="mc_dropout").posterior_estimate) \
        is MCDropoutPosterior
    assert type(BALDDropout(data, net).posterior_estimate) is MCDropoutPosterior


@pytest.mark.parametrize("posterior", ["consistent_mc_dropout", "mc_dropout"])
def test_batchbald_strategy_of_one_is_bald_dropouts_pick(posterior: str) -> None:
    # Same posterior, same seeds: the same samples, so a batch of one is BALD's top pick.
    picks = []
    for cls in (BALDDropout, BatchBALD):
        data, net = pool_and_net(seed=1)
        strategy = cls(data, net, n_drop=10, random_state=0, posterior=posterior)
        strategy.train()
        torch.manual_seed(3)
        picks.append(strategy.query(1).tolist())
    assert picks[0] == picks[1]


def test_power_bald_with_infinite_coldness_is_bald() -> None:
    picks = []
    for cls, options in ((BALDDropout, {}), (PowerBALD, {"beta": math.inf})):
        data, net = pool_and_net(seed=2)
        strategy = cls(data, net, random_state=0, **options)
        strategy.train()
        torch.manual_seed(3)
        picks.append(strategy.query(6).tolist())
    assert picks[0] == picks[1]


@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize("posterior", ["mc_dropout", "consistent_mc_dropout", "ensemble"])
def test_new_strategies_pick_n_distinct_unlabeled_on_an_unlabeled_pool(
    name: str, posterior: str
) -> None:
    data, net = pool_and_net(seed=5)
    assert (data.Y_train[~data.labeled_idxs] == deepal.UNKNOWN).all()
    strategy = deepal.get_strategy(name)(data, net, posterior=posterior, n_members=2,
                                         random_state=0)
    strategy.train()
    picked = strategy.query(7)
    assert len(set(picked.tolist())) == 7 and not data.labeled_idxs[picked].any()
    assert (data.Y_train[~data.labeled_idxs] == deepal.UNKNOWN).all()


def test_bad_options_are_clear_errors() -> None:
    data, net = pool_and_net()
    with pytest.raises(UnknownNameError, match="unknown posterior 'laplace'"):
        BALDDropout(data, net, posterior="laplace")
    with pytest.raises(DeepALError, match="use posterior='mc_dropout'"):
        BALDDropout(data, net, posterior="softmax")
    with pytest.raises(DeepALError, match="n_members must be an integer >= 2"):
        BALDDropout(data, net, posterior="ensemble", n_members=1)
    with pytest.raises(DeepALError, match="beta must be a number > 0"):
        PowerBALD(data, net, beta=0)
    with pytest.raises(DeepALError, match="unknown acquisition"):
        BALDDropout(data, net, acquisition="thompson")
    with pytest.raises(DeepALError, match="takes no acquisition"):
        BatchBALD(data, net, acquisition="power")
    with pytest.raises(DeepALError, match="n_configurations"):
        BatchBALD(data, net, n_configurations=0)
    # Power sampling needs non-negative scores; margins are negative.
    strategy = MarginSampling(data, net, acquisition="power", random_state=0)
    strategy.train()
    with pytest.raises(DeepALError, match="non-negative scores"):
        strategy.query(3)
    ensemble = BALDDropout(data, net, posterior="ensemble", n_members=2)
    with pytest.raises(DeepALError, match="ensemble is not trained"):
        list(ensemble.posterior_estimate.sample_batches(data.get_unlabeled_data()[1]))


def test_warm_started_members_continue_from_themselves() -> None:
    data, _ = pool_and_net(dropout=False)
    net = Net(NoDropoutNet, {"n_epoch": 2, "warm_start": True}, device="cpu")
    strategy = EntropySampling(data, net, posterior="ensemble", n_members=2, random_state=0)
    estimate = strategy.posterior_estimate
    assert isinstance(estimate, EnsemblePosterior)
    strategy.train()
    first = list(estimate.members)
    assert first[0] is not first[1]
    before = [m.head.weight.detach().clone() for m in first]
    strategy.train()
    assert all(new is old for new, old in zip(estimate.members, first, strict=True))
    assert not torch.equal(first[0].head.weight, before[0])  # trained on, not rebuilt


def test_an_ensemble_bypassed_by_net_training_warns() -> None:
    data, net = pool_and_net(dropout=False)
    strategy = BALDDropout(data, net, posterior="ensemble", n_members=2, random_state=0)
    strategy.train()
    strategy.query(2)
    net.train(data.get_labeled_data()[1])  # as if a loop retrained the net alone
    with pytest.warns(RuntimeWarning, match="members are now stale"):
        strategy.query(2)
