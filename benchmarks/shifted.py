"""k-center greedy on float32 embeddings far from the origin, against float64.

20-d points of unit spread, shifted by 0, 100, 1,000 and 10,000 and stored in float32. The
reference is the same selection on the same points translated back to the origin (exactly)
in float64. Printed: the first pick where the two differ, the share of picks they have in
common, and the covering radius each reaches (measured in float64).
"""

from __future__ import annotations

import numpy as np
import torch

from deepal.scores.distances import min_sq_dists
from deepal.scores.kcenter import k_center_greedy

SIZE = {"n_pool": 10_000, "dim": 20, "n_labeled": 100, "n_pick": 300}
SHIFTS = (0.0, 100.0, 1_000.0, 10_000.0)


def covering_radius(points: torch.Tensor, centres: np.ndarray) -> float:
    """Largest distance from a point to its nearest centre, in float64."""
    mask = np.zeros(len(points), dtype=bool)
    mask[centres] = True
    far = min_sq_dists(points[torch.as_tensor(~mask)], points[torch.as_tensor(mask)])
    return float(far.max().sqrt())


def run(full: bool) -> None:
    size = SIZE
    rng = np.random.default_rng(0)
    base = rng.standard_normal((size["n_pool"], size["dim"]))
    labeled = np.zeros(size["n_pool"], dtype=bool)
    labeled[rng.choice(size["n_pool"], size["n_labeled"], replace=False)] = True
    print(f"\n== shifted: k-center, pool {size['n_pool']:,} x {size['dim']}-d, "
          f"{size['n_labeled']} labeled, {size['n_pick']} picks, float32 vs float64")
    for shift in SHIFTS:
        shifted = torch.from_numpy((base + shift).astype(np.float32))
        at_origin = shifted.double() - shift  # exact: the same points, in float64
        got = k_center_greedy(shifted, labeled, size["n_pick"])
        want = k_center_greedy(at_origin, labeled, size["n_pick"])
        differ = np.flatnonzero(got != want)
        first = f"pick {differ[0] + 1}" if len(differ) else "none"
        common = len(np.intersect1d(got, want)) / size["n_pick"]
        print(f"  shift {shift:>8,.0f}: first differing pick {first:>9}, picks in common "
              f"{common:6.1%}, covering radius float32 "
              f"{covering_radius(at_origin, np.flatnonzero(labeled).tolist() + got.tolist()):.4f}"
              f" vs float64 "
              f"{covering_radius(at_origin, np.flatnonzero(labeled).tolist() + want.tolist()):.4f}")
