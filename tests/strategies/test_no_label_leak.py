"""Every strategy: never reads hidden labels, works on a pool with none, is deterministic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepal import Data, Net, Strategy, get_strategy, seed_everything
from deepal.errors import DeepALError
from deepal.strategies.registry import STRATEGIES

from conftest import TinyNet, blobs

N_POOL, N_LABELED, N_QUERY = 80, 12, 6


#: Semi-supervised training on the unlabeled pool: every confident pseudo-label counts.
SEMI = {"semi_supervised": {"threshold": 0.0, "mu": 2, "steps_per_epoch": 3}}


def make(
    strategy_name: str, hidden_labels: np.ndarray | None, seed: int = 0,
    params: dict | None = None, images: bool = False, **options
) -> Strategy:
    """A trained strategy on 80 blobs, 12 labeled, the rest of the pool's labels set to
    ``hidden_labels`` (``None``: unknown); with ``params`` added to the net's, and with
    ``images``, the blobs as 1x2x2 images."""
    x, y = blobs(N_POOL, seed=9)
    labeled = np.arange(N_LABELED)
    pool_labels = None if hidden_labels is None else hidden_labels.copy()
    if pool_labels is not None:
        pool_labels[labeled] = y[labeled]
    data = Data(x.reshape(-1, 1, 2, 2) if images else x, pool_labels, n_classes=3)
    data.label(labeled, y[labeled])
    seed_everything(seed)
    net = Net(FlatTinyNet if images else TinyNet,
              {"n_epoch": 3, "train_args": {"batch_size": 8}, "test_args": {"batch_size": 32},
               **(params or {})}, device="cpu")
    strategy = get_strategy(strategy_name)(data, net, **options)
    strategy.train()
    return strategy


class FlatTinyNet(TinyNet):
    """TinyNet on images, flattened."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return super().forward(x.flatten(1))


def picks(strategy_name: str, hidden_labels: np.ndarray | None, seed: int = 0,
          params: dict | None = None, images: bool = False) -> np.ndarray:
    return make(strategy_name, hidden_labels, seed, params, images).query(N_QUERY)


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_hidden_labels_do_not_change_the_picks(name: str):
    _, true_labels = blobs(N_POOL, seed=9)
    scrambled = np.random.default_rng(1).integers(0, 3, N_POOL)
    with_true = picks(name, true_labels)
    assert (picks(name, scrambled) == with_true).all()
    assert (picks(name, None) == with_true).all(), "a pool with no labels must work the same"


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_semi_supervised_training_does_not_read_the_hidden_labels(name: str):
    _, true_labels = blobs(N_POOL, seed=9)
    scrambled = np.random.default_rng(1).integers(0, 3, N_POOL)
    with_true = picks(name, true_labels, params=SEMI)
    assert (picks(name, scrambled, params=SEMI) == with_true).all()
    assert (picks(name, None, params=SEMI) == with_true).all()


@pytest.mark.parametrize("name", ["RandomSampling", "MarginSampling", "BALDDropout",
                                  "KCenterGreedy"])
def test_fixmatch_does_not_read_the_hidden_labels(name: str):
    _, true_labels = blobs(N_POOL, seed=9)
    scrambled = np.random.default_rng(1).integers(0, 3, N_POOL)
    with_true = picks(name, true_labels, params=SEMI, images=True)
    assert (picks(name, scrambled, params=SEMI, images=True) == with_true).all()
    assert (picks(name, None, params=SEMI, images=True) == with_true).all()


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_same_seed_same_picks(name: str):
    first = picks(name, None, seed=5)
    assert len(set(first.tolist())) == N_QUERY and (first >= N_LABELED).all()
    assert (picks(name, None, seed=5) == first).all()


def test_the_unlabeled_view_carries_no_labels_even_when_they_are_known():
    x, y = blobs(20, seed=0)
    data = Data(x, y)
    _, unlabeled = data.get_unlabeled_data()
    assert all(len(unlabeled[i]) == 2 for i in range(len(unlabeled)))
    assert getattr(unlabeled, "Y", None) is None
    batch = unlabeled.get_batch(torch.arange(5))
    assert len(batch) == 2


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_max_candidates_restricts_the_picks_to_a_random_subset(name: str):
    strategy = make(name, None, random_state=3, max_candidates=20)
    twin = make(name, None, random_state=3, max_candidates=20)
    candidates = twin.candidate_idxs()
    assert len(candidates) == 20 and not twin.dataset.labeled_idxs[candidates].any()
    picked = strategy.query(N_QUERY)
    assert set(picked.tolist()) <= set(candidates.tolist())
    with pytest.raises(DeepALError, match="exceeds max_candidates=20"):
        strategy.query(21)


def test_max_candidates_is_validated():
    with pytest.raises(DeepALError, match="max_candidates must be an integer >= 1"):
        make("MarginSampling", None, max_candidates=0)
