"""k-center picks follow exact distances: near-ties are settled on distances computed from
each pair alone, never on values that depend on how the distances were blocked."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import deepal.scores.kcenter as kcenter
from deepal.errors import DeepALError
from deepal.scores.distances import min_sq_dists
from deepal.scores.kcenter import (
    Farthest,
    FarthestFirst,
    exact_sq_dists,
    k_center_greedy,
    pick_farthest,
)


def near_tie_pool() -> tuple[torch.Tensor, np.ndarray]:
    """Float32 points far from the origin, where block products round differently: on this
    pool, values that depend on the blocking give other picks from pick 302 on."""
    gen = torch.Generator().manual_seed(2)
    x = torch.randn((3000, 8), generator=gen) * 100 + 1000
    return x, np.arange(3000) % 50 == 0


def dense_exact_k_center(x: torch.Tensor, labeled: np.ndarray, n: int) -> list[int]:
    """The plain method on exact distances: every point against every centre, every pick."""
    dist = exact_sq_dists(x, x).numpy()
    nearest = dist[:, labeled].min(axis=1)
    nearest[labeled] = -np.inf
    picks: list[int] = []
    for _ in range(n):
        pick = int(np.argmax(nearest))  # the first maximum: ties to the lowest index
        picks.append(pick)
        nearest = np.minimum(nearest, dist[:, pick])
        nearest[picks] = -np.inf
    return picks


def test_exact_sq_dists_do_not_depend_on_the_other_rows() -> None:
    gen = torch.Generator().manual_seed(0)
    a = torch.randn((37, 13), generator=gen) * 50 + 300
    b = torch.randn((11, 13), generator=gen) * 50 + 300
    whole = exact_sq_dists(a, b)
    by_row = torch.cat([exact_sq_dists(a[i : i + 1], b) for i in range(len(a))])
    by_column = torch.cat([exact_sq_dists(a, b[j : j + 1]) for j in range(len(b))], dim=1)
    order = torch.randperm(len(a), generator=gen)
    shuffled = exact_sq_dists(a[order], b)[torch.argsort(order)]
    assert torch.equal(whole, by_row) and torch.equal(whole, by_column)
    assert torch.equal(whole, shuffled)
    reference = ((a.double()[:, None] - b.double()[None]) ** 2).sum(-1)
    torch.testing.assert_close(whole, reference, rtol=1e-14, atol=0)


def test_exact_sq_dists_are_exact_on_integers_with_an_odd_dimension() -> None:
    a = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0]])
    b = torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.0], [1.0, 2.0, 3.0, 4.0, 6.0]])
    assert exact_sq_dists(a, b).tolist() == [[55.0, 1.0]]
    assert exact_sq_dists(torch.zeros(2, 0), torch.zeros(3, 0)).tolist() == [[0.0] * 3] * 2


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_margin_bounds_the_rounding_of_block_products(dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(3)
    points = (torch.randn((2000, 64), generator=gen, dtype=torch.float64) + 10_000).to(dtype)
    centres = points[:300]
    state = FarthestFirst(points, np.zeros(len(points), dtype=bool))
    state.start(centres)
    fast = min_sq_dists(points, centres.to(dtype)).double()
    error = (fast - kcenter.exact_min_sq_dists(points, centres)).abs().max()
    assert 0 < float(error) <= state.margin(dtype)
    assert state.margin(dtype) < 1e-2 * float(fast.max())  # a bound, not a blanket


def test_pick_farthest_computes_exact_distances_only_for_near_ties(monkeypatch) -> None:
    centres = [torch.tensor([[0.0, 0.0]])]
    far = Farthest(25.0, 9, torch.tensor([3.0, 4.0]), 0.5)
    less = Farthest(20.0, 2, torch.tensor([4.0, 2.0]), 0.5)
    gone = Farthest(float("-inf"), -1, torch.empty(0), 0.0)
    calls = []
    real = kcenter.exact_min_sq_dists
    monkeypatch.setattr(kcenter, "exact_min_sq_dists", lambda *a: calls.append(a) or real(*a))
    assert pick_farthest([less, far, gone], centres) is far
    assert not calls  # 20 is more than twice the margin below 25
    # Within the margins of each other, the exact distances decide, ties to the lowest.
    tied = Farthest(24.9, 4, torch.tensor([4.0, 3.0]), 0.5)
    chosen = pick_farthest([far, tied], centres)
    assert (chosen.position, chosen.value, chosen.margin) == (4, 25.0, 0.0) and calls
    above = Farthest(24.6, 12, torch.tensor([5.0, 1.0]), 0.5)
    assert pick_farthest([far, above], centres).position == 12  # exactly 26 > 25
    with pytest.raises(ValueError, match="no unlabeled point"):
        pick_farthest([gone], centres)


@pytest.mark.parametrize("sync_every", [1, 16, 256])
def test_k_center_on_near_ties_is_the_plain_method_on_exact_distances(sync_every: int) -> None:
    x, labeled = near_tie_pool()
    got = k_center_greedy(x, labeled, 400, chunk_size=256, sync_every=sync_every)
    assert got.tolist() == dense_exact_k_center(x, labeled, 400)


def test_half_precision_embeddings_pick_as_their_float32_values() -> None:
    x, labeled = near_tie_pool()
    half = (x / 1000).half()
    got = k_center_greedy(half, labeled, 100)
    assert got.tolist() == k_center_greedy(half.float(), labeled, 100).tolist()


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("cold", [False, True])
def test_non_finite_embeddings_are_refused_not_looped_on(bad: float, cold: bool) -> None:
    x = torch.randn(50, 3)
    x[7, 1] = bad
    labeled = np.zeros(50, dtype=bool) if cold else np.arange(50) % 10 == 0
    with pytest.raises(DeepALError, match="NaN or infinite"):
        k_center_greedy(x, labeled, 5)


def test_float32_embeddings_too_large_to_square_pick_as_float64() -> None:
    x = torch.randn(60, 3, generator=torch.Generator().manual_seed(4)) * 1e20
    labeled = np.arange(60) % 10 == 0
    assert k_center_greedy(x, labeled, 20).tolist() == dense_exact_k_center(x, labeled, 20)
