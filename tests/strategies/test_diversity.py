"""Diversity and hybrid strategies: BADGE, Cluster-Margin, TypiClust, ProbCover, BAIT and the
robust core set, each pinned to small cases worked out by hand or by brute force."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

import deepal
from deepal import Data, Strategy
from deepal.errors import DeepALError
from deepal.scores.bait import bait_select, fisher_factors, fisher_sum
from deepal.scores.coverage import ball_graph, covered_by, max_coverage, purity_radius
from deepal.scores.gradients import (
    gradient_embeddings,
    gradient_factors,
    gradient_sq_dists,
    kmeans_pp_gradients,
)
from deepal.scores.hierarchical import average_linkage_clusters, round_robin
from deepal.scores.kcenter import k_center_greedy
from deepal.scores.neighbours import knn_mean_distance, nearest
from deepal.scores.robust_kcenter import robust_k_center
from deepal.scores.typicality import typicality, typiclust_select

NEW = ["BADGE", "ClusterMargin", "TypiClust", "ProbCover", "BAIT", "KCenterGreedyRobust"]


class StubNet:
    """Stands in for a trained Net: the first ``n_embed`` input columns are the embedding,
    the rest (if any) the class probabilities, so picks can be checked by hand."""

    clf = object()

    def __init__(self, n_embed: int) -> None:
        self.n_embed = n_embed

    def get_embeddings(self, data: Dataset) -> torch.Tensor:
        return data.X[:, : self.n_embed].clone()  # type: ignore[attr-defined]

    def predict_prob(self, data: Dataset) -> torch.Tensor:
        return data.X[:, self.n_embed :].clone()  # type: ignore[attr-defined]


def stub_pool(points: np.ndarray, labeled: list[int], probs: np.ndarray | None = None) -> Data:
    x = points if probs is None else np.concatenate([points, probs], axis=1)
    data = Data(x.astype(np.float32), None, n_classes=2)
    if labeled:
        data.label(labeled, [0] * len(labeled))
    return data


# -- every new strategy: the query contract on a pool without labels ---------------------------


@pytest.mark.parametrize("name", NEW)
def test_n_distinct_unlabeled_indices_on_an_unlabeled_pool(
    name: str, unknown_pool: Data, tiny_net: deepal.Net
) -> None:
    strategy: Strategy = deepal.get_strategy(name)(unknown_pool, tiny_net, random_state=0)
    strategy.train()
    before = unknown_pool.Y_train.copy()
    picked = strategy.query(7)
    assert len(np.unique(picked)) == 7 and not unknown_pool.labeled_idxs[picked].any()
    np.testing.assert_array_equal(unknown_pool.Y_train, before)
    assert (unknown_pool.Y_train[~unknown_pool.labeled_idxs] == deepal.UNKNOWN).all()
    again = deepal.get_strategy(name)(unknown_pool, tiny_net, random_state=0).query(7)
    np.testing.assert_array_equal(again, picked)  # same seed, same picks
    everything = strategy.query(unknown_pool.n_unlabeled)
    np.testing.assert_array_equal(np.sort(everything), np.flatnonzero(~unknown_pool.labeled_idxs))


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("ProbCover", {"delta": -1.0}, "delta must be a finite number >= 0, got -1.0"),
        ("ProbCover", {"alpha": 0.0}, "alpha must be a finite number > 0, got 0.0"),
        ("ProbCover", {"alpha": 1.5}, "alpha must be in"),
        ("ProbCover", {"delta": float("nan")}, "delta must be a finite number >= 0, got nan"),
        ("TypiClust", {"k_neighbours": 0}, "k_neighbours must be an integer"),
        ("ClusterMargin", {"margin_multiple": 0.5},
         "margin_multiple must be a finite number >= 1, got 0.5"),
        ("ClusterMargin", {"n_clusters": 0}, "n_clusters must be an integer"),
        ("BAIT", {"lamb": 0.0}, "lamb must be a finite number > 0, got 0.0"),
        ("BAIT", {"oversample": True}, "oversample must be an integer >= 1, got True"),
        ("BAIT", {"oversample": 0}, "oversample must be an integer"),
        ("KCenterGreedyRobust", {"n_outliers": -1}, "n_outliers must be an integer"),
    ],
)
def test_bad_options_are_refused(name: str, options: dict[str, Any], message: str,
                                 unknown_pool: Data, tiny_net: deepal.Net) -> None:
    with pytest.raises(DeepALError, match=message):
        deepal.get_strategy(name)(unknown_pool, tiny_net, **options)


# -- BADGE ------------------------------------------------------------------------------------


def test_gradient_embedding_is_autograds_last_layer_gradient() -> None:
    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 3)
    h = torch.randn(6, 4, dtype=torch.float64)
    layer = layer.double()
    probs = F.softmax(layer(h), dim=1).detach()
    expected = []
    for i in range(len(h)):
        layer.zero_grad()
        logits = layer(h[i : i + 1])
        F.cross_entropy(logits, logits.argmax(dim=1)).backward()  # the predicted label
        expected.append(layer.weight.grad.flatten().clone())
    got = gradient_embeddings(probs, h)
    torch.testing.assert_close(got, torch.stack(expected))


def test_factored_gradient_distances_equal_the_explicit_ones() -> None:
    rng = np.random.default_rng(0)
    probs = torch.softmax(torch.as_tensor(rng.normal(size=(9, 4))), dim=1)
    h = torch.as_tensor(rng.normal(size=(9, 5)))
    a = gradient_factors(probs)
    explicit = torch.cdist(gradient_embeddings(probs, h), gradient_embeddings(probs, h)) ** 2
    torch.testing.assert_close(gradient_sq_dists(a, h, a, h), explicit, atol=1e-10, rtol=1e-8)


def test_badge_seeding_starts_at_the_longest_gradient_and_skips_duplicates() -> None:
    h = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 3.0], [0.0, 1.0]], dtype=torch.float64)
    a = torch.tensor([[0.5, -0.5], [0.5, -0.5], [0.5, -0.5], [-0.1, 0.1]], dtype=torch.float64)
    for seed in range(20):
        picks = kmeans_pp_gradients(a, h, 3, np.random.default_rng(seed))
        assert picks[0] == 2  # norm 0.707 * 3: the largest
        # 0 and 1 have the same gradient embedding: once one is a centre, never the other.
        assert not {0, 1} <= set(picks.tolist())
    assert sorted(kmeans_pp_gradients(a, h, 4, np.random.default_rng(0)).tolist()) == [0, 1, 2, 3]


# -- ProbCover ---------------------------------------------------------------------------------

# A dense ball: a centre (index 2) and four points 0.6 away; a line of three points 0.6 apart
# (middle: index 6); one far point. With delta = 1 the centre covers all five of its ball,
# each peripheral point only four, the middle of the line all three, its ends two.
COVER_POINTS = np.array(
    [[0.6, 0], [-0.6, 0], [0, 0], [0, 0.6], [0, -0.6], [10, 0], [10.6, 0], [11.2, 0], [30, 30]],
    dtype=np.float64,
)


def test_probcover_picks_the_centre_of_the_densest_ball_then_the_next() -> None:
    data = stub_pool(COVER_POINTS, [])
    strategy = deepal.ProbCover(data, StubNet(2), delta=1.0, random_state=0)
    assert strategy.query(3).tolist() == [2, 6, 8]


def test_probcover_counts_what_labeled_points_cover_as_covered() -> None:
    # Labeled 0 covers 0, 2, 3, 4: only 1 is left of the ball, so the line comes first.
    data = stub_pool(COVER_POINTS, [0])
    strategy = deepal.ProbCover(data, StubNet(2), delta=1.0, random_state=0)
    assert strategy.query(2).tolist() == [6, 1]


def test_ball_graph_and_greedy_coverage_by_hand() -> None:
    graph = ball_graph(COVER_POINTS, 1.0, chunk_size=4)
    neighbours = graph.indices[graph.indptr[2] : graph.indptr[3]]
    assert neighbours.tolist() == [0, 1, 2, 3, 4]
    assert graph.within(0.5).indptr[-1] == len(COVER_POINTS)  # only the points themselves
    picks, covered = max_coverage(graph, np.zeros(9, bool), np.ones(9, bool), 9)
    assert picks.tolist() == [2, 6, 8] and covered.all()  # stops once all is covered
    assert covered_by(graph, np.array([5])).tolist() == [False] * 5 + [True, True, False, False]
    with pytest.raises(DeepALError, match="more than 10 edges"):
        ball_graph(COVER_POINTS, 100.0, max_edges=10)


def test_purity_radius_is_just_below_the_allowed_nearest_other_label_distance() -> None:
    points = np.array([[0.0], [1.0], [3.0], [7.0]])
    labels = np.array([0, 0, 1, 1])  # nearest other label: 3, 2, 2, 6
    # just below: by a relative 1e-5, which float32 rounding of the distances cannot cross
    assert purity_radius(points, labels, alpha=1.0) == pytest.approx(2.0, rel=2e-5)
    assert purity_radius(points, labels, alpha=1.0) < 2.0 * (1 - 5e-6)  # radius 2 is impure
    assert purity_radius(points, labels, alpha=0.5) == pytest.approx(3.0, rel=2e-5)
    assert purity_radius(points, labels, alpha=0.25) == pytest.approx(6.0, rel=2e-5)


def test_probcover_chooses_delta_by_purity() -> None:
    rng = np.random.default_rng(0)
    blobs = np.concatenate([rng.normal(size=(30, 2)) * 0.3, rng.normal(size=(30, 2)) * 0.3 + 6])
    strategy = deepal.ProbCover(stub_pool(blobs, [0]), StubNet(2), random_state=0)
    picked = strategy.query(2)
    # Balls stay within a blob (the blobs are about 8.5 apart) and cover most of one.
    assert strategy.last_delta is not None and 0.5 < strategy.last_delta < 8.5
    assert picked[0] >= 30  # the blob without a labeled point first


# -- TypiClust ---------------------------------------------------------------------------------


def typiclust_points() -> np.ndarray:
    ring = [[np.cos(t), np.sin(t)] for t in np.linspace(0, 2 * np.pi, 5, endpoint=False)]
    big_labeled = np.array([[0.0, 0.0]]) + np.random.default_rng(0).normal(size=(8, 2)) * 0.5
    medium = np.array([[0.0, 0.0], *ring]) + [40.0, 0.0]  # its centre (index 8) is typical
    small = np.array([[0.0, 0.0], [0.5, 0.0], [1.0, 0.0]]) + [0.0, 40.0]  # middle: index 15
    return np.concatenate([big_labeled, medium, small])


def test_typiclust_picks_the_most_typical_point_of_the_largest_uncovered_cluster() -> None:
    data = stub_pool(typiclust_points(), [0])  # the largest cluster has a labeled point
    strategy = deepal.TypiClust(data, StubNet(2), random_state=0)
    assert strategy.query(2).tolist() == [8, 15]


def test_typiclust_with_every_cluster_covered_goes_on_from_the_largest() -> None:
    points = typiclust_points()
    picks = typiclust_select(points, np.isin(np.arange(17), [0, 9, 14]), 1,
                             np.random.default_rng(0), max_clusters=3)
    assert 1 <= picks[0] <= 7  # three clusters, each covered once: the largest again


def test_typicality_is_the_inverse_mean_distance_to_the_nearest_neighbours() -> None:
    points = np.array([[0.0], [1.0], [3.0], [7.0]])
    np.testing.assert_allclose(knn_mean_distance(points, 2), [2.0, 1.5, 2.5, 5.0])
    np.testing.assert_allclose(typicality(points, k=2), [0.5, 1 / 1.5, 0.4, 0.2])
    np.testing.assert_allclose(typicality(points, k=20), 3 / np.array([11, 9, 9, 17]))
    assert nearest(points, np.array([[0.9], [6.0]]))[0].tolist() == [0, 0, 0, 1]


# -- Cluster-Margin ----------------------------------------------------------------------------


def test_round_robin_goes_smallest_cluster_first_one_member_at_a_time() -> None:
    clusters = np.array([0, 0, 0, 1, 1, 2])
    for seed in range(5):
        picks = round_robin(clusters, 5, np.random.default_rng(seed))
        assert clusters[picks].tolist() == [2, 1, 0, 1, 0]
        assert len(set(picks.tolist())) == 5
    assert round_robin(clusters, 6, np.random.default_rng(0)).size == 6


def three_groups(per: int = 6) -> np.ndarray:
    rng = np.random.default_rng(1)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    return np.concatenate([c + rng.normal(size=(per, 2)) * 0.3 for c in centres])


@pytest.mark.parametrize("options", [{"n_clusters": 3}, {"distance_threshold": 4.0},
                                     {"n_clusters": 3, "max_points": 7}])
def test_average_linkage_finds_the_groups(options: dict[str, Any]) -> None:
    ids = average_linkage_clusters(three_groups(), np.random.default_rng(0), **options)
    assert [len(set(ids[i * 6 : i * 6 + 6])) for i in range(3)] == [1, 1, 1]
    assert len(set(ids.tolist())) == 3


def test_cluster_margin_spreads_the_lowest_margins_over_clusters() -> None:
    points = three_groups()
    # Group 0's points are the least sure, then group 1, then group 2: plain margin sampling
    # would take 3 from group 0; the round robin takes one per group.
    margins = np.concatenate([np.full(6, 0.02), np.full(6, 0.1), np.full(6, 0.2)])
    margins += np.arange(18) * 1e-4
    probs = np.stack([(1 + margins) / 2, (1 - margins) / 2], axis=1)
    strategy = deepal.ClusterMargin(stub_pool(points, [], probs), StubNet(2),
                                    n_clusters=3, random_state=0)
    picks = strategy.query(3)
    assert sorted(p // 6 for p in picks) == [0, 1, 2]
    assert strategy.cluster_ids is not None and len(set(strategy.cluster_ids.tolist())) == 3
    # With margin_multiple = 1 only the three least sure (all in group 0) are eligible.
    narrow = deepal.ClusterMargin(stub_pool(points, [], probs), StubNet(2), n_clusters=3,
                                  margin_multiple=1, random_state=0)
    assert sorted(narrow.query(3).tolist()) == [0, 1, 2]


# -- robust k-center ---------------------------------------------------------------------------


def outlier_points() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    groups = [c + rng.normal(size=(5, 2)) * 0.2 for c in ([0.0, 0.0], [6.0, 0.0], [0.0, 6.0])]
    points = np.concatenate([*groups, [[60.0, 60.0]]])
    labeled = np.zeros(16, dtype=bool)
    labeled[0] = True
    return points, labeled


def test_robust_k_center_ignores_an_isolated_outlier_that_plain_k_center_picks_first() -> None:
    points, labeled = outlier_points()
    plain = k_center_greedy(torch.as_tensor(points), labeled, 2)
    assert plain[0] == 15
    picks, radius = robust_k_center(points, labeled, 2, n_outliers=1)
    assert sorted(p // 5 for p in picks) == [1, 2] and radius < 2.0
    # With no outlier allowed, covering the far point takes one of the two picks.
    strict, _ = robust_k_center(points, labeled, 2, n_outliers=0)
    assert 15 in strict.tolist()


def test_robust_k_center_strategy_fills_the_batch_without_the_outlier() -> None:
    points, labeled = outlier_points()
    data = stub_pool(points, np.flatnonzero(labeled).tolist())
    strategy = deepal.KCenterGreedyRobust(data, StubNet(2), n_outliers=1, random_state=0)
    picks = strategy.query(4)
    assert 15 not in picks.tolist() and len(set(picks.tolist())) == 4
    assert strategy.last_radius is not None and strategy.last_radius < 2.0


# -- BAIT --------------------------------------------------------------------------------------


def test_fisher_factors_give_the_expected_outer_product_of_gradients() -> None:
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 4).double()
    h = torch.randn(2, 3, dtype=torch.float64)
    probs = F.softmax(layer(h), dim=1).detach()
    v = fisher_factors(probs, h)
    for i in range(2):
        expected = torch.zeros(12, 12, dtype=torch.float64)
        for y in range(4):
            layer.zero_grad()
            F.cross_entropy(layer(h[i : i + 1]), torch.tensor([y])).backward()
            g = layer.weight.grad.flatten()
            expected += probs[i, y] * torch.outer(g, g)
        torch.testing.assert_close(v[i] @ v[i].T, expected)
    torch.testing.assert_close(fisher_sum(probs, h, chunk_size=1),
                               (v @ v.transpose(1, 2)).sum(dim=0))


def brute_force_bait(v: torch.Tensor, pool: torch.Tensor, labeled: torch.Tensor,
                     n_labeled: int, n: int, lamb: float) -> list[int]:
    """BAIT's forward-backward greedy with explicit D x D inverses."""
    scale = 1.0 / (n_labeled + n)
    eye = torch.eye(len(pool), dtype=torch.float64)

    def objective(chosen: list[int]) -> float:
        m = lamb * eye + scale * (labeled + sum((v[j] @ v[j].T for j in chosen),
                                                torch.zeros_like(eye)))
        return float(torch.trace(torch.linalg.inv(m) @ pool))

    chosen: list[int] = []
    for _ in range(2 * n):
        rest = [j for j in range(len(v)) if j not in chosen]
        chosen.append(min(rest, key=lambda j: objective([*chosen, j])))
    while len(chosen) > n:
        chosen.remove(min(chosen, key=lambda j: objective([k for k in chosen if k != j])))
    return chosen


def test_bait_selection_equals_brute_force() -> None:
    rng = np.random.default_rng(3)
    probs = torch.softmax(torch.as_tensor(rng.normal(size=(12, 3)) * 2), dim=1)
    h = torch.as_tensor(rng.normal(size=(12, 2)))
    pool = fisher_sum(probs, h) / 12
    labeled = fisher_sum(probs[:3], h[:3])
    v = fisher_factors(probs[3:], h[3:])
    for n in (1, 2, 3):
        got = bait_select(probs[3:], h[3:], pool, labeled, 3, n, lamb=0.1, chunk_size=4)
        assert sorted(got.tolist()) == sorted(brute_force_bait(v, pool, labeled, 3, n, 0.1))
    assert sorted(bait_select(probs[3:], h[3:], pool, labeled, 3, 9).tolist()) == list(range(9))


def test_bait_picks_where_the_pool_has_fisher_information_the_labels_lack() -> None:
    # Two directions of embedding; the labeled point and most candidates lie along the first.
    # The second direction's only candidates are 4 and 5; BAIT takes one of them first.
    h = np.array([[1, 0], [1, 0.1], [1, -0.1], [0.9, 0], [0, 1], [0, 1.1]], dtype=np.float64)
    probs = np.full((6, 2), 0.5)
    data = stub_pool(h, [0], probs)
    strategy = deepal.BAIT(data, StubNet(2), random_state=0)
    assert strategy.query(1)[0] in (4, 5)
    assert len(set(strategy.query(2).tolist()) & {4, 5}) == 1  # not both: they are alike


def test_bait_narrows_wide_embeddings() -> None:
    rng = np.random.default_rng(0)
    h = rng.normal(size=(20, 6))
    probs = np.full((20, 2), 0.5)
    strategy = deepal.BAIT(stub_pool(h, [0, 1], probs), StubNet(6), max_fisher_dim=4,
                           random_state=0)
    narrowed = strategy._narrow(torch.as_tensor(h), 2)
    assert narrowed.shape == (20, 2)
    assert len(set(strategy.query(3).tolist())) == 3


def test_product_of_gradient_norms_is_the_badge_score() -> None:
    # last_scores are the gradient norms: the most confident example scores lowest.
    probs = np.array([[0.99, 0.01], [0.6, 0.4], [0.5, 0.5]])
    data = stub_pool(np.ones((3, 2)), [], probs)
    strategy = deepal.BADGE(data, StubNet(2), random_state=0)
    strategy.query(1)
    assert strategy.last_scores is not None
    assert list(np.argsort(strategy.last_scores)) == [0, 1, 2]


@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize("layout", ["spread", "duplicates"])
def test_cold_start_and_duplicate_embeddings(name: str, layout: str) -> None:
    # No labeled example (a net trained elsewhere), and a pool of identical embeddings.
    rng = np.random.default_rng(0)
    points = rng.normal(size=(12, 2)) if layout == "spread" else np.zeros((12, 2))
    probs = np.full((12, 2), 0.5) if layout == "duplicates" else np.stack(
        [np.linspace(0.1, 0.9, 12), np.linspace(0.9, 0.1, 12)], axis=1)
    strategy = deepal.get_strategy(name)(stub_pool(points, [], probs), StubNet(2),
                                         random_state=0)
    picks = strategy.query(4)
    assert len(set(picks.tolist())) == 4
    assert len(set(strategy.query(12).tolist())) == 12


class ExtraLayerNet(torch.nn.Module):
    """Its embedding is NOT the input of its last layer (one more layer sits in between)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Linear(4, 5)
        self.mid = torch.nn.Linear(5, 5)
        self.head = torch.nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = torch.relu(self.body(x))
        return self.head(torch.relu(self.mid(embedding))), embedding

    def get_embedding_dim(self) -> int:
        return 5


@pytest.mark.parametrize("name", ["BADGE", "BAIT"])
def test_last_layer_strategies_warn_when_the_embedding_is_not_the_last_layer_input(
    name: str, unknown_pool: Data, tiny_net: deepal.Net
) -> None:
    tiny_net.train(unknown_pool.get_labeled_data()[1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the built-in contract: no warning
        deepal.get_strategy(name)(unknown_pool, tiny_net, random_state=0).query(3)
    other = deepal.Net(ExtraLayerNet, {"n_epoch": 1}, device="cpu")
    other.train(unknown_pool.get_labeled_data()[1])
    with pytest.warns(RuntimeWarning, match="not the input of its last linear layer"):
        deepal.get_strategy(name)(unknown_pool, other, random_state=0).query(3)


@pytest.mark.parametrize("name", ["TypiClust", "ProbCover"])
def test_fixed_features_pick_the_first_batch_without_a_trained_net(name: str) -> None:
    points = typiclust_points()
    data = Data(np.zeros((17, 3), dtype=np.float32), None, n_classes=3)
    untrained = deepal.Net(ExtraLayerNet, device="cpu")
    strategy = deepal.get_strategy(name)(data, untrained, features=points, random_state=0)
    picks = strategy.query(3)
    assert untrained.clf is None and len(set(picks.tolist())) == 3
    # One pick in each of the three groups: the features, not the inputs, were used.
    assert sorted(0 if p < 8 else 1 if p < 14 else 2 for p in picks) == [0, 1, 2]
    with pytest.raises(DeepALError, match=r"shape \(17, d\)"):
        deepal.get_strategy(name)(data, untrained, features=points[:5])
    with pytest.raises(DeepALError, match="needs a trained network"):
        deepal.get_strategy(name)(data, untrained).query(1)
