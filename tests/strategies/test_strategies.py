"""The paper's non-adversarial strategies, end to end on a toy pool whose unlabeled part has no
labels at all."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from deepal import Data, Net
from deepal.errors import DeepALError
from deepal.nets import posterior
from deepal.resources import torch_threads
from deepal.scores.kcenter import k_center_greedy
from deepal.scores.uncertainty import bald, entropy, least_confidence
from deepal.strategies.bald import BALDDropout
from deepal.strategies.base import Strategy
from deepal.strategies.kcenter import KCenterGreedy
from deepal.strategies.kmeans import KMeansSampling
from deepal.strategies.kmedians import KMediansSampling
from deepal.strategies.uncertainty import (
    EntropySampling,
    EntropySamplingDropout,
    LeastConfidence,
    LeastConfidenceDropout,
    MarginSampling,
    MarginSamplingDropout,
    UncertaintySampling,
)

ALL = [
    LeastConfidence, MarginSampling, EntropySampling,
    LeastConfidenceDropout, MarginSamplingDropout, EntropySamplingDropout,
    BALDDropout, KCenterGreedy, KMeansSampling, KMediansSampling,
]
DROPOUT = [LeastConfidenceDropout, MarginSamplingDropout, EntropySamplingDropout, BALDDropout]
DETERMINISTIC = [LeastConfidence, MarginSampling, EntropySampling]


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with torch_threads(1):
        yield


class TinyNet(nn.Module):
    """A two-layer classifier with dropout: ``forward`` returns ``(logits, embedding)``."""

    def __init__(self, dim_in: int = 2, dim_emb: int = 8, n_classes: int = 3) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim_in, dim_emb)
        self.drop = nn.Dropout(0.5)
        self.fc2 = nn.Linear(dim_emb, n_classes)
        self.dim_emb = dim_emb

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = F.relu(self.fc1(x))
        return self.fc2(self.drop(emb)), emb

    def get_embedding_dim(self) -> int:
        return self.dim_emb


def toy_pool(seed: int = 0, per: int = 15, n_labeled: int = 6) -> tuple[Data, np.ndarray]:
    """Three 2-d blobs; only ``n_labeled`` examples get labels (the rest stay unknown, -1).

    Returns the pool and the true labels, which the strategies must never see."""
    rng = np.random.default_rng(seed)
    means = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    x = np.concatenate([m + rng.normal(scale=0.7, size=(per, 2)) for m in means])
    y = np.repeat(np.arange(3), per)
    data = Data(x.astype(np.float32), None, n_classes=3)
    first = rng.choice(len(x), size=n_labeled, replace=False)
    data.label(first, y[first])
    return data, y


def trained(strategy_cls: type[Strategy], seed: int = 0, **kwargs: Any) -> Strategy:
    torch.manual_seed(seed)
    data, _ = toy_pool(seed)
    net = Net(
        TinyNet,
        {"n_epoch": 5, "train_args": {"batch_size": 8}, "test_args": {"batch_size": 16},
         "optimizer_args": {"lr": 0.1, "momentum": 0.5}},
        device="cpu",
    )
    strategy = strategy_cls(data, net, random_state=seed, **kwargs)
    strategy.train()
    return strategy


# -- the query contract on every strategy ------------------------------------------------------


@pytest.mark.parametrize("cls", ALL)
def test_returns_n_distinct_unlabeled_indices(cls: type[Strategy]) -> None:
    strategy = trained(cls)
    data = strategy.dataset
    before = data.Y_train.copy()
    picked = strategy.query(7)
    assert len(picked) == 7 and len(np.unique(picked)) == 7
    assert not data.labeled_idxs[picked].any()
    # Querying reads no label and writes none: the unknown labels are still unknown.
    np.testing.assert_array_equal(data.Y_train, before)
    assert (data.Y_train[~data.labeled_idxs] == -1).all()


@pytest.mark.parametrize("cls", ALL)
def test_can_query_the_whole_unlabeled_pool(cls: type[Strategy]) -> None:
    strategy = trained(cls)
    left = strategy.dataset.n_unlabeled
    picked = strategy.query(left)
    np.testing.assert_array_equal(np.sort(picked), np.flatnonzero(~strategy.dataset.labeled_idxs))


@pytest.mark.parametrize("cls", ALL)
def test_same_random_state_same_picks(cls: type[Strategy]) -> None:
    # MC-dropout masks come from torch's generator, so that is seeded too.
    picks = []
    for _ in range(2):
        strategy = trained(cls, seed=3)
        torch.manual_seed(11)
        picks.append(strategy.query(5).tolist())
    assert picks[0] == picks[1]


@pytest.mark.parametrize("cls", ALL)
def test_needs_a_trained_net(cls: type[Strategy]) -> None:
    data, _ = toy_pool()
    with pytest.raises(DeepALError):
        cls(data, Net(TinyNet, device="cpu"), random_state=0).query(2)


# -- uncertainty sampling: hand-checked picks through a stub net -------------------------------


class IdentityNet:
    """Stands in for a trained Net: each input row is its own class probabilities and its own
    embedding, so picks can be checked by hand."""

    clf = object()

    def predict_prob(self, data: Dataset) -> torch.Tensor:
        return data.X.clone()  # type: ignore[attr-defined]

    def get_embeddings(self, data: Dataset) -> torch.Tensor:
        return data.X.clone()  # type: ignore[attr-defined]


PROBS = np.array(
    [
        [0.90, 0.05, 0.05],  # confident
        [0.45, 0.45, 0.10],  # smallest margin
        [0.40, 0.30, 0.30],  # least confident, highest entropy
        [0.50, 0.25, 0.25],  # second highest entropy
        [0.80, 0.15, 0.05],
    ],
    dtype=np.float32,
)


@pytest.mark.parametrize(
    ("cls", "expected"),
    [(LeastConfidence, [2, 1]), (MarginSampling, [1, 2]), (EntropySampling, [2, 3])],
)
def test_uncertainty_picks_by_hand(cls: type[UncertaintySampling], expected: list[int]) -> None:
    data = Data(PROBS, None, n_classes=3)
    data.label([4], [0])
    strategy = cls(data, IdentityNet(), random_state=0)  # type: ignore[arg-type]
    assert strategy.query(2).tolist() == expected
    assert strategy.last_scores is not None and len(strategy.last_scores) == 4
    # Once the top pick is labeled, the positions map back to pool indices correctly.
    data.label([expected[0]], [0])
    assert strategy.query(1).tolist() == [expected[1]]


def test_last_scores_are_the_kernel_on_the_softmax() -> None:
    strategy = trained(LeastConfidence)
    strategy.query(3)
    _, unlabeled = strategy.dataset.get_unlabeled_data()
    expected = least_confidence(strategy.net.predict_prob(unlabeled)).numpy()
    np.testing.assert_allclose(strategy.last_scores, expected)


# -- MC dropout is really used -----------------------------------------------------------------


def spy(strategy: Strategy, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the n_drop of every MC-dropout sampling; forbid the deterministic softmax."""
    calls: list[int] = []
    real = posterior.dropout_sample_batches

    def recording(model: nn.Module, batches: Any, n_drop: int, *args: Any) -> Iterator[Any]:
        calls.append(n_drop)
        return real(model, batches, n_drop, *args)

    def forbidden(data: Dataset) -> torch.Tensor:
        raise AssertionError("a dropout strategy used the deterministic softmax")

    monkeypatch.setattr(posterior, "dropout_sample_batches", recording)
    monkeypatch.setattr(strategy.net, "predict_prob", forbidden)
    return calls


@pytest.mark.parametrize("cls", DROPOUT)
def test_dropout_variants_sample_mc_dropout(
    cls: type[Strategy], monkeypatch: pytest.MonkeyPatch
) -> None:
    strategy = trained(cls)
    assert strategy.n_drop == 10  # type: ignore[attr-defined]
    calls = spy(strategy, monkeypatch)
    strategy.query(4)
    assert calls and all(n_drop == 10 for n_drop in calls)


@pytest.mark.parametrize("cls", DETERMINISTIC)
def test_deterministic_variants_do_not_sample(
    cls: type[Strategy], monkeypatch: pytest.MonkeyPatch
) -> None:
    strategy = trained(cls)

    def forbidden(*args: Any) -> Iterator[torch.Tensor]:
        raise AssertionError("a deterministic strategy sampled MC dropout")

    monkeypatch.setattr(posterior, "dropout_sample_batches", forbidden)
    strategy.query(4)


def test_entropy_dropout_scores_the_mean_of_the_samples() -> None:
    strategy = trained(EntropySamplingDropout, n_drop=4)
    _, unlabeled = strategy.dataset.get_unlabeled_data()
    torch.manual_seed(5)
    samples = strategy.net.predict_prob_dropout_split(unlabeled, n_drop=4)
    torch.manual_seed(5)
    strategy.query(3)
    np.testing.assert_allclose(strategy.last_scores, entropy(samples.mean(dim=0)).numpy(),
                               rtol=1e-5)
    # The samples really differ: dropout was sampling.
    assert (samples[0] - samples[1]).abs().max() > 1e-4


def test_bald_dropout_scores_equal_dense_bald() -> None:
    strategy = trained(BALDDropout, n_drop=6)
    _, unlabeled = strategy.dataset.get_unlabeled_data()
    torch.manual_seed(2)
    samples = strategy.net.predict_prob_dropout_split(unlabeled, n_drop=6)
    torch.manual_seed(2)
    strategy.query(3)
    np.testing.assert_allclose(strategy.last_scores, bald(samples).numpy(), rtol=1e-6,
                               atol=1e-9)
    assert (strategy.last_scores > 0).any()


def test_n_drop_is_validated() -> None:
    data, _ = toy_pool()
    net = Net(TinyNet, device="cpu")
    with pytest.raises(DeepALError):
        BALDDropout(data, net, n_drop=1)
    with pytest.raises(DeepALError):
        EntropySampling(data, net, n_drop=-1)
    with pytest.raises(DeepALError):
        EntropySamplingDropout(data, net, n_drop=2.5)  # type: ignore[arg-type]
    assert EntropySampling(data, net).n_drop == 0
    assert LeastConfidenceDropout(data, net, n_drop=3).n_drop == 3
    # The dropout variant scores what the plain one scores, on MC-dropout samples.
    assert MarginSamplingDropout.score is MarginSampling.score
    assert MarginSamplingDropout(data, net).n_drop == 10


# -- diversity strategies ----------------------------------------------------------------------


def three_blobs_pool() -> Data:
    """Nine points in three tight, far-apart groups; the first point is labeled."""
    x = np.array(
        [[0, 0], [0.1, 0], [0, 0.1], [10, 0], [10.1, 0], [10, 0.1], [0, 10], [0.1, 10], [0, 10.1]],
        dtype=np.float32,
    )
    data = Data(x, None, n_classes=3)
    data.label([0], [0])
    return data


@pytest.mark.parametrize("cls", [KMeansSampling, KMediansSampling])
def test_clustering_strategies_pick_one_per_blob(cls: type[Strategy]) -> None:
    strategy = cls(three_blobs_pool(), IdentityNet(), random_state=0)  # type: ignore[arg-type]
    picked = strategy.query(3)
    assert sorted(int(i) // 3 for i in picked) == [0, 1, 2]


def test_kcenter_goes_to_the_unlabeled_blobs_first() -> None:
    net: Any = IdentityNet()
    strategy = KCenterGreedy(three_blobs_pool(), net, random_state=0)
    picked = strategy.query(2)
    assert sorted(int(i) // 3 for i in picked) == [1, 2]


def test_kcenter_equals_the_kernel_on_the_pool_embeddings() -> None:
    strategy = trained(KCenterGreedy, chunk_size=5)
    labeled, pool = strategy.dataset.get_train_data()
    expected = k_center_greedy(strategy.net.get_embeddings(pool), labeled, 6)
    assert strategy.query(6).tolist() == expected.tolist()


def test_kcenter_cold_start() -> None:
    picks = []
    for _ in range(2):
        strategy = trained(KCenterGreedy, seed=1)
        data = strategy.dataset
        data.unlabel(np.flatnonzero(data.labeled_idxs))  # a trained net, but no labeled example
        picked = strategy.query(5)
        assert len(np.unique(picked)) == 5
        picks.append(picked.tolist())
    assert picks[0] == picks[1]
