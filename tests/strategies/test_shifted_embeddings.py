"""Distance-based strategies on float32 embeddings far from the origin pick exactly what a
float64 computation picks.

Each pool holds 20-d points of unit spread, shifted by 0, 100 or 10,000 and stored in float32.
The reference runs the same strategy on the same points translated back to the origin (exactly:
a float32 point near 10,000 minus 10,000 is representable) and given as float64 embeddings,
where every distance is exact to about 1e-15; k-center and BADGE are also checked against
plain float64 implementations written here. BADGE's gradient embeddings are not translation
invariant, so its reference keeps the shift and works on the explicit gradient embeddings.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

import deepal
from deepal import Data

SHIFTS = [0.0, 100.0, 10_000.0]
N, D, N_LABELED, N_PICK = 300, 20, 10, 25


class StubNet:
    """A trained net stand-in: the first ``D`` input columns are the embedding (given in
    ``dtype``), the rest the class probabilities."""

    clf = object()

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype

    def get_embeddings(self, data: Dataset) -> torch.Tensor:
        return data.X[:, :D].to(self.dtype)  # type: ignore[attr-defined]

    def predict_prob(self, data: Dataset) -> torch.Tensor:
        return data.X[:, D:].clone()  # type: ignore[attr-defined]


def pools(shift: float, seed: int = 0) -> tuple[Data, Data, np.ndarray]:
    """The float32 pool shifted by ``shift``, the same points at the origin, and the
    shifted points in float64 (exactly the float32 values)."""
    rng = np.random.default_rng(seed)
    shifted = (rng.standard_normal((N, D)) + shift).astype(np.float32)
    at_origin = (shifted.astype(np.float64) - shift).astype(np.float32)
    assert np.array_equal(at_origin.astype(np.float64) + shift, shifted.astype(np.float64))
    logits = rng.standard_normal((N, 3)) * 2.0
    probs = (np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)).astype(np.float32)
    made = []
    for points in (shifted, at_origin):
        data = Data(np.concatenate([points, probs], axis=1), None, n_classes=3)
        data.label(list(range(N_LABELED)), [0] * N_LABELED)
        made.append(data)
    return made[0], made[1], shifted.astype(np.float64)


STRATEGIES: dict[str, dict[str, Any]] = {
    "KCenterGreedy": {},
    "KCenterGreedyRobust": {"n_outliers": 3},
    "KMeansSampling": {},
    "KMediansSampling": {},
    "TypiClust": {"k_neighbours": 5},
    "ProbCover": {},
    "ProbCover-delta": {"delta": 4.0},
    "ClusterMargin": {"max_cluster_points": 100, "margin_multiple": 4.0},
}


@pytest.mark.parametrize("shift", SHIFTS)
@pytest.mark.parametrize("name", list(STRATEGIES))
def test_float32_picks_far_from_the_origin_are_the_float64_picks(name: str, shift: float
                                                                 ) -> None:
    shifted, at_origin, _ = pools(shift)
    cls = deepal.get_strategy(name.split("-")[0])
    options = STRATEGIES[name]
    got = cls(shifted, StubNet(torch.float32), random_state=0, **options).query(N_PICK)
    want = cls(at_origin, StubNet(torch.float64), random_state=0, **options).query(N_PICK)
    assert got.tolist() == want.tolist()


def farthest_first(points: np.ndarray, labeled: np.ndarray, n: int) -> list[int]:
    """Plain greedy k-center in float64 with direct differences."""
    nearest = np.min([((points - c) ** 2).sum(axis=1) for c in points[labeled]], axis=0)
    nearest[labeled] = -np.inf
    picks = []
    for _ in range(n):
        pick = int(np.argmax(nearest))
        picks.append(pick)
        nearest = np.minimum(nearest, ((points - points[pick]) ** 2).sum(axis=1))
        nearest[picks] = -np.inf
    return picks


@pytest.mark.parametrize("shift", SHIFTS)
def test_k_center_far_from_the_origin_is_plain_float64_farthest_first(shift: float) -> None:
    shifted, _, exact = pools(shift)
    labeled = shifted.labeled_idxs.copy()
    got = deepal.KCenterGreedy(shifted, StubNet(torch.float32), random_state=0).query(60)
    assert got.tolist() == farthest_first(exact, labeled, 60)


def badge_reference(probs: np.ndarray, h: np.ndarray, n: int, rng: np.random.Generator
                    ) -> list[int]:
    """BADGE's k-means++ seeding on explicit float64 gradient embeddings, direct differences:
    the longest gradient first, then D^2 draws (uniform among the rest if all are 0)."""
    a = probs.copy()
    a[np.arange(len(a)), a.argmax(axis=1)] -= 1.0
    g = (a[:, :, None] * h[:, None, :]).reshape(len(a), -1)
    chosen = [int((g * g).sum(axis=1).argmax())]
    closest = ((g - g[chosen[0]]) ** 2).sum(axis=1)
    while len(chosen) < n:
        closest[chosen] = 0.0
        cumulative = np.cumsum(closest)
        if cumulative[-1] > 0:
            pick = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
            pick = min(pick, int(np.flatnonzero(closest > 0)[-1]))
        else:
            pick = int(rng.choice(np.setdiff1d(np.arange(len(a)), chosen)))
        chosen.append(pick)
        closest = np.minimum(closest, ((g - g[pick]) ** 2).sum(axis=1))
    return chosen


@pytest.mark.parametrize("shift", SHIFTS)
def test_badge_far_from_the_origin_is_plain_float64_seeding(shift: float) -> None:
    shifted, _, exact = pools(shift)
    got = deepal.BADGE(shifted, StubNet(torch.float32), random_state=0).query(N_PICK)
    unlabeled = np.flatnonzero(~shifted.labeled_idxs)
    probs = shifted.X_train[unlabeled, D:].astype(np.float64)
    rng = deepal.BADGE(shifted, StubNet(torch.float32), random_state=0).rng  # the same draws
    want = unlabeled[badge_reference(probs, exact[unlabeled], N_PICK, rng)]
    assert got.tolist() == want.tolist()
