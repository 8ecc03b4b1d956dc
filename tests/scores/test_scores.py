"""Pure score kernels: uncertainty, distances/k-center and clustering, on hand-worked numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from deepal.scores import clustering
from deepal.scores.clustering import kmeans_centres, kmedians_centres, nearest_distinct
from deepal.scores.distances import min_sq_dists, pairwise_sq_dists
from deepal.scores.kcenter import k_center_greedy
from deepal.scores.selection import top_n
from deepal.scores.uncertainty import (
    bald,
    bald_from_batches,
    entropy,
    least_confidence,
    margin,
)


def h(*p: float) -> float:
    """Entropy of a hand-written distribution, for expected values."""
    return -sum(x * math.log(x) for x in p if x > 0)


# -- uncertainty -------------------------------------------------------------------------------

PROBS = torch.tensor(
    [
        [0.90, 0.05, 0.05],
        [0.45, 0.45, 0.10],
        [0.40, 0.30, 0.30],
        [0.50, 0.25, 0.25],
    ]
)


def test_least_confidence_hand_values() -> None:
    scores = least_confidence(PROBS)
    assert scores.tolist() == pytest.approx([0.10, 0.55, 0.60, 0.50])
    assert top_n(scores, 1).tolist() == [2]


def test_margin_picks_the_closest_top_two() -> None:
    scores = margin(PROBS)
    assert scores.tolist() == pytest.approx([-0.85, 0.0, -0.10, -0.25])
    assert top_n(scores, 2).tolist() == [1, 2]


def test_margin_needs_two_classes() -> None:
    with pytest.raises(ValueError):
        margin(torch.ones(3, 1))


def test_entropy_hand_values() -> None:
    scores = entropy(PROBS)
    expected = [h(0.9, 0.05, 0.05), h(0.45, 0.45, 0.1), h(0.4, 0.3, 0.3), h(0.5, 0.25, 0.25)]
    assert scores.tolist() == pytest.approx(expected, rel=1e-6)
    assert top_n(scores, 2).tolist() == [2, 3]


def test_entropy_of_one_hot_is_exactly_zero_and_uniform_is_log_c() -> None:
    scores = entropy(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    assert scores.tolist() == [0.0, 0.0]
    assert not torch.isnan(scores).any()
    uniform = torch.full((1, 5), 0.2, dtype=torch.float64)
    assert entropy(uniform).item() == pytest.approx(math.log(5), abs=1e-12)


def test_kernels_reject_wrong_shapes() -> None:
    with pytest.raises(ValueError):
        least_confidence(torch.ones(3))
    with pytest.raises(ValueError):
        bald(torch.ones(3, 2))


def test_bald_is_zero_when_samples_agree() -> None:
    one = torch.tensor([[0.7, 0.2, 0.1], [1.0, 0.0, 0.0]])
    scores = bald(one.expand(8, 2, 3))
    assert scores.tolist() == pytest.approx([0.0, 0.0], abs=1e-12)
    assert (scores >= 0).all()


def test_bald_hand_values_when_samples_disagree() -> None:
    samples = torch.tensor(
        [
            [[1.0, 0.0], [0.5, 0.5]],  # dropout sample 1 for examples 0 and 1
            [[0.0, 1.0], [1.0, 0.0]],  # dropout sample 2
        ]
    )
    scores = bald(samples)
    # Example 0: the mean is uniform (entropy log 2), each sample is one-hot (entropy 0).
    # Example 1: mean [0.75, 0.25]; mean entropy (log 2 + 0) / 2.
    expected = [math.log(2), h(0.75, 0.25) - math.log(2) / 2]
    assert scores.tolist() == pytest.approx(expected, rel=1e-12)
    assert expected[1] == pytest.approx(0.2158, abs=1e-4)


def test_bald_never_negative_under_rounding() -> None:
    samples = torch.tensor([[[1 / 3, 1 / 3, 1 / 3]]], dtype=torch.float32).expand(7, 50, 3)
    samples = samples + torch.linspace(-1e-8, 1e-8, 50)[None, :, None]
    assert (bald(samples) >= 0).all()


def test_streaming_bald_equals_dense() -> None:
    dense = torch.as_tensor(np.random.default_rng(0).dirichlet(np.ones(4), size=(5, 11)))
    batches = [dense[:, :3], dense[:, 3:6], dense[:, 6:10], dense[:, 10:]]
    mean, scores = bald_from_batches(iter(batches))
    torch.testing.assert_close(scores, bald(dense))
    torch.testing.assert_close(mean, dense.mean(dim=0))
    assert (scores > 0).all()


def test_streaming_bald_of_nothing_is_empty() -> None:
    mean, scores = bald_from_batches([])
    assert len(mean) == 0 and len(scores) == 0


# -- distances and k-center --------------------------------------------------------------------


def test_pairwise_sq_dists_hand_values() -> None:
    a = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    b = torch.tensor([[3.0, 4.0], [1.0, 1.0]])
    assert pairwise_sq_dists(a, b).tolist() == [[25.0, 2.0], [13.0, 0.0]]


def test_pairwise_sq_dists_never_negative_or_nan() -> None:
    # Large norms and nearly identical points: the expansion cancels catastrophically.
    noise = torch.randn(20, 16, generator=torch.Generator().manual_seed(1)) * 1e-4
    a = torch.full((20, 16), 1e4) + noise
    d = pairwise_sq_dists(a, a)
    assert not torch.isnan(d).any()
    assert (d >= 0).all()


def test_min_sq_dists_matches_dense_in_every_chunking() -> None:
    rng = np.random.default_rng(0)
    points = torch.as_tensor(rng.normal(size=(23, 4)))
    centres = torch.as_tensor(rng.normal(size=(9, 4)))
    dense = ((points[:, None] - centres[None]) ** 2).sum(-1).min(dim=1).values
    for chunk in (1, 3, 5, 100):
        torch.testing.assert_close(min_sq_dists(points, centres, chunk_size=chunk), dense)


def test_min_sq_dists_without_centres_is_inf() -> None:
    out = min_sq_dists(torch.zeros(4, 2), torch.zeros(0, 2))
    assert torch.isinf(out).all()


def test_k_center_picks_the_farthest_point_in_1d() -> None:
    x = torch.tensor([[0.0], [1.0], [2.0], [10.0]])
    labeled = np.array([True, False, False, False])
    # 10 is farthest from 0; then 2 (distance 2 to 0) beats 1 (distance 1); then 1.
    assert k_center_greedy(x, labeled, 3).tolist() == [3, 2, 1]


def test_k_center_hand_case_2d() -> None:
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 5.0], [4.0, 4.0], [0.0, 4.0]])
    labeled = np.array([True, False, False, False, False])
    # Squared distances to (0,0): 1, 25, 32, 16 -> pick 3 (4,4). Then to {(0,0),(4,4)}:
    # (0,5): min(25, 17) = 17; (0,4): min(16, 16) = 16; (1,0): 1 -> pick 2. Then (0,4) is at 1
    # from (0,5) and (1,0) at 1 from (0,0): a tie, which goes to the lower index, 1.
    assert k_center_greedy(x, labeled, 4).tolist() == [3, 2, 1, 4]


def naive_k_center(x: torch.Tensor, labeled: np.ndarray, n: int, first: int | None) -> list[int]:
    """Dense reference: the full distance matrix and a min over all centres at every step."""
    x = x.double()
    dist = ((x[:, None] - x[None]) ** 2).sum(-1).numpy()
    centres = list(np.flatnonzero(labeled))
    picks: list[int] = []
    if not centres:
        assert first is not None
        centres, picks = [first], [first]
    while len(picks) < n:
        nearest = dist[:, centres].min(axis=1)
        nearest[labeled] = -np.inf
        nearest[picks] = -np.inf
        pick = int(np.argmax(nearest))
        picks.append(pick)
        centres.append(pick)
    return picks


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("kind", ["continuous", "integer-ties"])
@pytest.mark.parametrize("sync_every", [1, 3, 256])
def test_k_center_equals_dense_reference(seed: int, kind: str, sync_every: int) -> None:
    rng = np.random.default_rng(seed)
    n_points = int(rng.integers(5, 40))
    if kind == "continuous":
        x = torch.as_tensor(rng.normal(size=(n_points, 3)), dtype=torch.float32)
    else:  # few distinct values: duplicates and tied distances everywhere
        x = torch.as_tensor(rng.integers(0, 3, size=(n_points, 2)), dtype=torch.float32)
    labeled = rng.random(n_points) < 0.3
    n = int(rng.integers(1, (~labeled).sum() + 1)) if (~labeled).any() else 0
    if labeled.any():
        expected = naive_k_center(x, labeled, n, first=None)
        got = k_center_greedy(x, labeled, n, chunk_size=4, sync_every=sync_every)
        assert got.tolist() == expected
    # Cold start, with and without a generator.
    none = np.zeros(n_points, dtype=bool)
    n_cold = int(rng.integers(1, n_points + 1))
    mean_first = int(np.argmin(((x.double() - x.double().mean(0)) ** 2).sum(1).numpy()))
    got = k_center_greedy(x, none, n_cold, rng=None, chunk_size=4, sync_every=sync_every)
    assert got.tolist() == naive_k_center(x, none, n_cold, first=mean_first)
    drawn_first = int(np.random.default_rng(seed).integers(n_points))
    got = k_center_greedy(x, none, n_cold, rng=np.random.default_rng(seed),
                          sync_every=sync_every)
    assert got.tolist() == naive_k_center(x, none, n_cold, first=drawn_first)
    assert len(set(got.tolist())) == n_cold


def test_k_center_on_identical_points_has_no_nan_and_stays_distinct() -> None:
    x = torch.full((6, 3), 7.5)
    labeled = np.array([False, True, False, False, True, False])
    assert k_center_greedy(x, labeled, 4).tolist() == [0, 2, 3, 5]


def test_k_center_rejects_too_many_picks() -> None:
    with pytest.raises(ValueError):
        k_center_greedy(torch.zeros(3, 2), np.array([True, False, False]), 3)
    assert len(k_center_greedy(torch.zeros(3, 2), np.zeros(3, dtype=bool), 0)) == 0


# -- clustering --------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["sqeuclidean", "l1"])
def test_nearest_distinct_when_centres_share_a_nearest_point(metric: str) -> None:
    points = torch.tensor([[0.0], [1.0], [5.0]])
    centres = torch.tensor([[0.1], [0.2], [4.0]])
    # Both first centres are nearest point 0; the second gets its next nearest, point 1.
    assert nearest_distinct(points, centres, metric=metric).tolist() == [0, 1, 2]


def test_nearest_distinct_ties_and_chunking() -> None:
    points = torch.tensor([[-1.0, 0.0], [1.0, 0.0], [0.0, 3.0]])
    assert nearest_distinct(points, torch.zeros(1, 2)).tolist() == [0]
    rng = np.random.default_rng(3)
    pts = torch.as_tensor(rng.normal(size=(30, 2)))
    cen = torch.as_tensor(rng.normal(size=(30, 2)))  # as many centres as points
    for metric in ("sqeuclidean", "l1"):
        full = nearest_distinct(pts, cen, metric=metric)
        assert sorted(full.tolist()) == list(range(30))
        assert nearest_distinct(pts, cen, metric=metric, chunk_size=4).tolist() == full.tolist()


def test_nearest_distinct_validates() -> None:
    with pytest.raises(ValueError):
        nearest_distinct(torch.zeros(2, 1), torch.zeros(3, 1))
    with pytest.raises(ValueError):
        nearest_distinct(torch.zeros(2, 1), torch.zeros(1, 1), metric="cosine")


def blobs(seed: int = 0, per: int = 20) -> tuple[torch.Tensor, np.ndarray]:
    rng = np.random.default_rng(seed)
    means = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = np.concatenate([m + rng.normal(scale=0.5, size=(per, 2)) for m in means])
    return torch.as_tensor(x), means


def matched_error(centres: torch.Tensor, means: np.ndarray) -> float:
    """Largest distance from each true mean to the nearest found centre."""
    c = centres.numpy()
    return float(max(np.abs(c - m).sum(1).min() for m in means))


def test_kmeans_recovers_blobs_and_is_seeded_by_rng() -> None:
    x, means = blobs()
    centres = kmeans_centres(x, 3, np.random.default_rng(0))
    assert centres.shape == (3, 2) and centres.dtype == torch.float64
    assert matched_error(centres, means) < 1.0
    again = kmeans_centres(x, 3, np.random.default_rng(0))
    torch.testing.assert_close(centres, again)
    float32 = kmeans_centres(x.float(), 3, np.random.default_rng(0))
    assert float32.dtype == torch.float64  # k centres in float64; the pool stays float32
    assert matched_error(float32, means) < 1.0


def _inertia(x: np.ndarray, centres: np.ndarray) -> float:
    return float(((x[:, None, :] - centres[None]) ** 2).sum(-1).min(1).sum())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kmeans_matches_scikit_learn_kmeans(seed: int) -> None:
    """The plain reference: scikit-learn's KMeans on every point. Same partition on
    separated blobs; on overlapping data, a within-cluster distance as low (to 2%)."""
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(seed)
    means = rng.normal(scale=20.0, size=(8, 5))
    separated = np.concatenate([m + rng.normal(size=(40, 5)) for m in means])
    ours = kmeans_centres(separated, 8, np.random.default_rng(seed)).numpy()
    ref = KMeans(8, n_init=1, random_state=seed).fit(separated)
    ours_labels = ((separated[:, None] - ours[None]) ** 2).sum(-1).argmin(1)
    # Same partition up to renaming the clusters: a one-to-one map between the labellings.
    pairs = set(zip(ours_labels.tolist(), ref.labels_.tolist(), strict=True))
    assert len(pairs) == 8
    overlapping = rng.normal(size=(600, 4)).astype(np.float32)
    ours_inertia = _inertia(overlapping, kmeans_centres(
        overlapping, 20, np.random.default_rng(seed)).numpy())
    ref_inertia = KMeans(20, n_init=1, random_state=seed).fit(overlapping).inertia_
    assert ours_inertia <= 1.02 * ref_inertia


def test_kmeans_max_iter_and_seed_sample_still_give_k_centres() -> None:
    x, means = blobs(per=200)
    centres = kmeans_centres(x, 3, np.random.default_rng(0), max_iter=2, seed_sample=30)
    assert centres.shape == (3, 2)
    assert matched_error(centres, means) < 1.0


def test_kmeans_k_equal_n_and_duplicates() -> None:
    x = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    torch.testing.assert_close(kmeans_centres(x, 2, np.random.default_rng(0)), x.double())
    with pytest.raises(ValueError):
        kmeans_centres(x, 3, np.random.default_rng(0))
    same = torch.zeros(5, 2)
    centres = kmeans_centres(same, 3, np.random.default_rng(0))
    assert sorted(nearest_distinct(same, centres).tolist()) == [0, 1, 2]


def test_kmedians_recovers_blobs_deterministically() -> None:
    x, means = blobs(1)
    centres = kmedians_centres(x, 3, np.random.default_rng(0))
    assert matched_error(centres, means) < 1.0
    torch.testing.assert_close(centres, kmedians_centres(x, 3, np.random.default_rng(0)))


def test_kmedians_single_cluster_is_the_coordinatewise_lower_median() -> None:
    x = torch.tensor([[0.0, 0.0], [1.0, 10.0], [2.0, 1.0], [100.0, 3.0]])
    centre = kmedians_centres(x, 1, np.random.default_rng(0))
    assert centre.tolist() == [[1.0, 1.0]]


def test_kmedians_reseeds_an_empty_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    x, means = blobs(2)
    # A seed far from every point owns no point at the first assignment.
    seeds = torch.tensor([[0.0, 0.0], [0.5, 0.0], [1000.0, 1000.0]], dtype=torch.float64)
    monkeypatch.setattr(clustering, "_seed_l1", lambda x, k, rng: seeds.clone())
    centres = kmedians_centres(x, 3, np.random.default_rng(0))
    assert torch.isfinite(centres).all()
    assert matched_error(centres, means) < 1.0  # the far seed moved onto the third blob


def test_kmedians_on_duplicates_does_not_crash() -> None:
    same = torch.ones(6, 3)
    centres = kmedians_centres(same, 4, np.random.default_rng(0), max_iter=5)
    assert centres.shape == (4, 3)
    assert sorted(nearest_distinct(same, centres, metric="l1").tolist()) == [0, 1, 2, 3]
    with pytest.raises(ValueError):
        kmedians_centres(same, 0, np.random.default_rng(0))
