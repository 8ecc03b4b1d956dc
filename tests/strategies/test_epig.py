"""EPIG: the score against a brute-force loop and its information-theoretic properties, then
the strategy (same posterior samples for candidates and targets, seeds, refusals, a run)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import deepal
from deepal import Data, Net, seed_everything
from deepal.errors import DeepALError
from deepal.nets.posterior import ConsistentMCDropoutPosterior
from deepal.scores.bayesian import epig, epig_from_batches
from deepal.scores.uncertainty import bald
from deepal.strategies.epig import EPIG

from conftest import TinyNet, blobs


def dirichlet(k: int, n: int, c: int, seed: int, alpha: float = 0.5) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    gammas = torch._standard_gamma(torch.full((k, n, c), alpha, dtype=torch.float64),
                                   generator=generator)
    return gammas / gammas.sum(dim=2, keepdim=True)


def brute_force_epig(candidates: torch.Tensor, targets: torch.Tensor) -> list[float]:
    """``mean_m sum_{y,y*} p(y,y*) log(p(y,y*) / (p(y) p(y*)))`` by plain loops."""
    k_samples, n, c = candidates.shape
    m = targets.shape[1]
    p, q = candidates.tolist(), targets.tolist()
    scores = []
    for i in range(n):
        total = 0.0
        for j in range(m):
            joint = [[sum(p[k][i][y] * q[k][j][z] for k in range(k_samples)) / k_samples
                      for z in range(c)] for y in range(c)]
            py = [sum(p[k][i][y] for k in range(k_samples)) / k_samples for y in range(c)]
            pz = [sum(q[k][j][z] for k in range(k_samples)) / k_samples for z in range(c)]
            total += sum(joint[y][z] * math.log(joint[y][z] / (py[y] * pz[z]))
                         for y in range(c) for z in range(c) if joint[y][z] > 0)
        scores.append(total / m)
    return scores


# -- the score --------------------------------------------------------------------------------


@pytest.mark.parametrize(("k", "c"), [(1, 3), (2, 2), (3, 5), (7, 3), (12, 10)])
def test_epig_matches_a_brute_force_loop(k: int, c: int):
    candidates, targets = dirichlet(k, 5, c, seed=k), dirichlet(k, 4, c, seed=100 + k)
    expected = brute_force_epig(candidates, targets)
    assert epig(candidates, targets).tolist() == pytest.approx(expected, abs=1e-12)
    # One candidate per block gives the same numbers as one block for all.
    assert epig(candidates, targets, block_elements=1).tolist() == pytest.approx(
        expected, abs=1e-12)


def test_one_posterior_sample_carries_no_information():
    samples = dirichlet(1, 6, 4, seed=3)
    assert epig(samples, dirichlet(1, 3, 4, seed=4)).abs().max() < 1e-15


def test_epig_is_zero_when_every_sample_agrees():
    one = dirichlet(1, 5, 4, seed=5)
    agreeing = one.expand(6, 5, 4).float()
    targets = dirichlet(6, 3, 4, seed=6)
    assert torch.all(epig(agreeing, targets) < 1e-12)
    assert torch.all(epig(dirichlet(6, 5, 4, seed=7), agreeing[:, :2]) < 1e-12)


def test_epig_is_finite_and_non_negative_near_zero_probabilities():
    samples = dirichlet(8, 40, 10, seed=8, alpha=0.02)  # many entries below 1e-30
    samples[:, :5] = torch.nn.functional.one_hot(torch.arange(8 * 5).view(8, 5) % 10, 10).double()
    scores = epig(samples[:, 10:], samples[:, :10])
    assert torch.isfinite(scores).all() and (scores >= 0).all()
    # float32 inputs are accumulated in float64: the same scores to float32 rounding.
    single = epig(samples[:, 10:].float(), samples[:, :10].float())
    assert single.dtype == torch.float64
    assert torch.allclose(single, scores, atol=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_epig_never_exceeds_bald_when_targets_come_from_the_same_samples(seed: int):
    # y - theta - y* is a Markov chain under the K-sample posterior, so by the data
    # processing inequality I(y; y*) <= I(y; theta) for every target, and so for their mean.
    samples = dirichlet(6, 30, 4, seed=seed, alpha=0.3)
    candidates, targets = samples[:, :20], samples[:, 20:]
    assert torch.all(epig(candidates, targets) <= bald(candidates) + 1e-12)


def test_epig_of_a_candidate_on_itself_is_bald_when_every_sample_is_certain():
    # The degenerate case: the target distribution is the candidate itself. Then
    # I(y; y*) = I(y; theta) exactly when each sample predicts one class with certainty
    # (y* = y given theta); with soft samples it is strictly smaller.
    labels = torch.tensor([[0, 1, 2, 2], [0, 0, 1, 1], [2, 2, 2, 2], [1, 0, 1, 3]]).T
    certain = torch.nn.functional.one_hot(labels, 4).double()  # (K=4, N=4, C=4)
    on_itself = torch.stack([epig(certain[:, [i]], certain[:, [i]])[0] for i in range(4)])
    assert torch.allclose(on_itself, bald(certain), atol=1e-12)
    assert on_itself[2] == 0 and on_itself.max() > 1.0
    soft = torch.tensor([[[0.9, 0.1]], [[0.1, 0.9]]], dtype=torch.float64)
    assert float(epig(soft, soft)) < float(bald(soft)[0]) - 0.1


@pytest.mark.parametrize("sizes", [[3, 7], [2, 1, 4, 3], [10], [0, 3, 0, 7], [1] * 10])
def test_epig_from_batches_splits_targets_from_candidates_anywhere(sizes: list[int]):
    samples = dirichlet(5, 10, 3, seed=9)
    batches = list(torch.split(samples, sizes, dim=1))
    got = epig_from_batches(iter(batches), n_targets=3)
    assert torch.equal(got, epig(samples[:, 3:], samples[:, :3]))


def test_epig_refuses_shapes_that_do_not_fit():
    samples = dirichlet(4, 5, 3, seed=10)
    with pytest.raises(ValueError, match="do not fit"):
        epig(samples, samples[:2])
    with pytest.raises(ValueError, match="do not fit"):
        epig(samples, samples[:, :0])
    with pytest.raises(ValueError, match="3 target examples first"):
        epig_from_batches([samples[:, :2]], n_targets=3)


# -- the strategy -----------------------------------------------------------------------------


def trained_strategy(random_state: int = 0, **options) -> EPIG:
    x, y = blobs(90, seed=2)
    xt, yt = blobs(30, seed=3)
    data = Data(x, y, xt, yt)
    data.initialize_labels(9, random_state=0)
    seed_everything(0)
    net = Net(TinyNet, {"n_epoch": 3, "train_args": {"batch_size": 8},
                        "test_args": {"batch_size": 16}}, device="cpu")
    strategy = EPIG(data, net, random_state=random_state, **options)
    strategy.train()
    return strategy


def test_the_strategy_picks_distinct_unlabeled_examples_reproducibly():
    first, again = trained_strategy(n_targets=20), trained_strategy(n_targets=20)
    picked = first.query(7)
    assert len(set(picked.tolist())) == 7 and not first.dataset.labeled_idxs[picked].any()
    assert np.array_equal(picked, again.query(7))
    assert np.array_equal(first.last_targets, again.last_targets)
    assert len(first.last_targets) == 20 and not first.dataset.labeled_idxs[
        first.last_targets].any()
    other = trained_strategy(random_state=1, n_targets=20)
    other.query(7)
    assert not np.array_equal(other.last_targets, first.last_targets)


def test_candidates_and_targets_share_the_same_dropout_masks():
    strategy = trained_strategy(n_targets=15, n_drop=8, max_candidates=40)
    strategy.query(3)
    assert isinstance(strategy.posterior_estimate, ConsistentMCDropoutPosterior)
    # Sample the targets and the candidates apart with the masks of the query's seed: the
    # scores are the strategy's only if both used those same K networks.
    seed = strategy.posterior_estimate.last_seed
    fixed = ConsistentMCDropoutPosterior(strategy.net, 8, seed=seed)
    data = strategy.dataset
    unlabeled = np.flatnonzero(~data.labeled_idxs)
    assert len(unlabeled) > 40
    targets = torch.cat(list(fixed.sample_batches(data.get_inputs(strategy.last_targets))), 1)
    rng = np.random.default_rng(0)  # the strategy's draws: the candidates first, then targets
    candidates_idx = np.sort(rng.choice(unlabeled, size=40, replace=False))
    candidates = torch.cat(list(fixed.sample_batches(data.get_inputs(candidates_idx))), 1)
    assert torch.allclose(torch.from_numpy(strategy.last_scores), epig(candidates, targets),
                          atol=1e-9)
    # Masks drawn afresh for the targets would give other scores.
    other = ConsistentMCDropoutPosterior(strategy.net, 8, seed=12345)
    shifted = torch.cat(list(other.sample_batches(data.get_inputs(strategy.last_targets))), 1)
    assert not torch.allclose(epig(candidates, shifted), epig(candidates, targets), atol=1e-6)


def test_an_ensemble_posterior_works_and_uses_every_target_when_the_pool_is_small():
    strategy = trained_strategy(posterior="ensemble", n_members=3, n_targets=1000)
    picked = strategy.query(4)
    assert len(set(picked.tolist())) == 4
    unlabeled = np.flatnonzero(~strategy.dataset.labeled_idxs)
    assert np.array_equal(strategy.last_targets, unlabeled)
    assert strategy.last_scores is not None and (strategy.last_scores >= 0).all()


@pytest.mark.parametrize(("options", "named"), [
    ({"posterior": "mc_dropout"}, "consistent_mc_dropout"),
    ({"posterior": "softmax"}, "softmax"),
    ({"n_targets": 0}, "n_targets"),
    ({"n_targets": 2.5}, "n_targets"),
    ({"n_drop": 1}, "n_drop"),
])
def test_bad_options_are_refused_with_a_clear_error(options, named):
    x, y = blobs(30, seed=2)
    data = Data(x, y)
    net = Net(TinyNet, {"n_epoch": 1}, device="cpu")
    with pytest.raises(DeepALError, match=named):
        EPIG(data, net, **options)


def test_epig_runs_end_to_end_on_digits():
    data = deepal.get_dataset("digits")
    data.initialize_labels(30, random_state=0)
    seed_everything(0)
    net = deepal.get_net("digits", device="cpu", params={"n_epoch": 20})
    strategy = deepal.get_strategy("EPIG")(data, net, random_state=0, n_targets=50, n_drop=8,
                                           max_candidates=300)
    results = deepal.run_loop(strategy, n_query=10, n_round=2)
    assert [r.n_labeled for r in results] == [30, 40, 50]
    assert int(data.labeled_idxs.sum()) == 50
    queried = np.concatenate([r.queried for r in results[1:]])
    assert len(set(queried.tolist())) == 20
    # Chance is 0.1 on ten classes.
    assert all(r.test_accuracy is not None and r.test_accuracy > 0.25 for r in results)
