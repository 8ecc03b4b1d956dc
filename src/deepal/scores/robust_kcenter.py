"""Outlier-tolerant k-center (the robust core set of Sener & Savarese, 2018), without a MIP.

The paper's robust core set looks for the smallest radius ``delta`` such that ``n`` new
centres, with the labeled points, leave at most ``n_outliers`` points farther than ``delta``
from every centre; it starts from greedy k-center (whose radius ``delta_g`` is feasible) and
binary-searches ``delta`` with a mixed-integer program (Gurobi) as the feasibility test.

Here the feasibility test is a greedy heuristic instead of the MIP: at radius ``delta``,
:func:`~deepal.scores.coverage.max_coverage` adds, ``n`` times, the unlabeled point whose
``delta``-ball holds the most points not yet within ``delta`` of a centre; ``delta`` is
feasible when at most ``n_outliers`` points stay uncovered. Greedy coverage can call a
feasible radius infeasible (it is a ``1 - 1/e`` approximation of max coverage), so the answer
is the smallest radius *the heuristic* proves feasible, never below the MIP's. An isolated
outlier covers only itself, so it is picked last, and within the ``n_outliers`` allowance it
is not picked at all, where plain greedy k-center would pick it first.
"""

from __future__ import annotations

import numpy as np
import torch

from deepal.scores.coverage import MAX_EDGES, capped_ball_graph, covered_by, max_coverage
from deepal.scores.distances import DEFAULT_CHUNK_SIZE, min_sq_dists
from deepal.scores.kcenter import k_center_greedy
from deepal.scores.neighbours import as_points


def robust_k_center(
    embeddings: torch.Tensor | np.ndarray,
    labeled_mask: np.ndarray,
    n: int,
    n_outliers: int,
    rng: np.random.Generator | None = None,
    n_steps: int = 12,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_edges: int = MAX_EDGES,
) -> tuple[np.ndarray, float]:
    """Pick ``n`` unlabeled points: k-center allowing ``n_outliers`` uncovered points.

    1. Greedy k-center (:func:`~deepal.scores.kcenter.k_center_greedy`) gives a radius
       ``delta_g`` that covers every point.
    2. One ball graph at ``delta_g`` is built in blocks (at a smaller radius if its edges
       would exceed ``max_edges``: :func:`~deepal.scores.coverage.capped_ball_graph`); each
       binary-search step on ``delta`` below that radius keeps the edges ``<= delta`` and
       runs the greedy coverage test above (``n_steps`` halvings).
    3. The picks of the smallest feasible ``delta`` are returned. If the coverage used fewer
       than ``n`` picks, the rest come from greedy k-center with the points it left uncovered
       (the outliers) counted as covered, so they are still not picked. If no ``delta`` is
       feasible, the plain greedy k-center picks are returned.

    Parameters
    ----------
    embeddings:
        Shape ``(N, d)``: labeled and unlabeled points.
    labeled_mask:
        Shape ``(N,)`` booleans.
    n:
        Points to pick, at most the unlabeled count.
    n_outliers:
        Points that may stay farther than ``delta`` from every centre (the paper's ``Xi``).
    rng:
        Passed to greedy k-center (its first pick at a cold start).
    n_steps:
        Binary-search steps.
    chunk_size, max_edges:
        As for :func:`~deepal.scores.coverage.ball_graph`: time ``O(N^2 d)`` once (a few
        times if the graph must shrink), memory at most ``max_edges`` edges.

    Returns
    -------
    tuple
        The picks (int64 positions, in order) and the radius they achieve (``delta_g`` for
        the plain fallback).
    """
    x = as_points(embeddings, "embeddings")
    labeled = np.asarray(labeled_mask, dtype=bool)
    if n_outliers < 0:
        raise ValueError(f"n_outliers must be >= 0, got {n_outliers}")
    greedy = k_center_greedy(x, labeled, n, rng=rng, chunk_size=chunk_size)
    centres = labeled.copy()
    centres[greedy] = True
    if n == 0 or centres.all():
        return greedy, 0.0
    radius = float(min_sq_dists(x[torch.as_tensor(~centres)], x[torch.as_tensor(centres)],
                                chunk_size).max().sqrt())
    greedy_radius = radius
    # Feasible radii hold about N / n points a ball, far below max_edges / N on a real pool;
    # the greedy radius (up to twice the optimum) may not fit, and is lowered until it does.
    full, radius = capped_ball_graph(x, radius, max_edges, chunk_size=chunk_size)

    def attempt(delta: float) -> tuple[np.ndarray, np.ndarray] | None:
        graph = full.within(delta)
        picks, covered = max_coverage(graph, covered_by(graph, labeled), ~labeled, n)
        return (picks, covered) if int((~covered).sum()) <= n_outliers else None

    best = attempt(radius)
    if best is None:
        return greedy, greedy_radius
    low, high = 0.0, radius
    for _ in range(n_steps):
        mid = 0.5 * (low + high)
        found = attempt(mid)
        if found is None:
            low = mid
        else:
            best, high = found, mid
    picks, covered = best
    if len(picks) < n:
        # Fill with farthest-first picks; the outliers left uncovered count as centres, so
        # farthest-first does not reach for them.
        taken = labeled | ~covered
        taken[picks] = True
        if int((~taken).sum()) < n - len(picks):  # too few others: outliers after all
            taken = labeled.copy()
            taken[picks] = True
        more = k_center_greedy(x, taken, n - len(picks), rng=rng, chunk_size=chunk_size)
        picks = np.concatenate([picks, more])
    return picks, high
