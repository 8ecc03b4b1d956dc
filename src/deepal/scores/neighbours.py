"""Nearest references and k-nearest-neighbour distances, computed in blocks.

Used by the low-budget strategies (TypiClust, Cluster-Margin, ProbCover): no function here
holds more than ``chunk_size x len(refs)`` distances at once.
"""

from __future__ import annotations

import numpy as np
import torch

from deepal.scores.distances import DEFAULT_CHUNK_SIZE, pairwise_sq_dists


def as_points(points: torch.Tensor | np.ndarray, name: str = "points") -> torch.Tensor:
    """``points`` as a 2-d floating CPU tensor (float32 kept, integers to float32)."""
    x = torch.as_tensor(points).detach().cpu()
    if not x.is_floating_point():
        x = x.float()
    if x.dim() != 2:
        raise ValueError(f"{name} must have shape (N, d), got {tuple(x.shape)}")
    return x


def nearest(
    points: torch.Tensor | np.ndarray,
    refs: torch.Tensor | np.ndarray,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> tuple[np.ndarray, np.ndarray]:
    """Each point's nearest reference (ties: lowest index) and its squared distance.

    Parameters
    ----------
    points:
        Shape ``(N, d)``.
    refs:
        Shape ``(M, d)``, ``M >= 1`` (cluster centres, or a clustered subset).
    chunk_size:
        Points per block: memory ``O(chunk_size * M)``.

    Returns
    -------
    tuple of numpy.ndarray
        Positions into ``refs`` (int64, shape ``(N,)``) and squared distances ``(N,)``.
    """
    x, r = as_points(points), as_points(refs, "refs")
    if len(r) == 0:
        raise ValueError("refs is empty")
    r = r.to(torch.promote_types(x.dtype, r.dtype))
    idx = np.empty(len(x), dtype=np.int64)
    dist = np.empty(len(x), dtype=np.float64)
    for start in range(0, len(x), chunk_size):
        best = pairwise_sq_dists(x[start : start + chunk_size].to(r.dtype), r).min(dim=1)
        idx[start : start + chunk_size] = best.indices.numpy()
        dist[start : start + chunk_size] = best.values.double().numpy()
    return idx, dist


def knn_mean_distance(
    points: torch.Tensor | np.ndarray, k: int, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> np.ndarray:
    """Each point's mean Euclidean distance to its ``k`` nearest *other* points.

    Parameters
    ----------
    points:
        Shape ``(N, d)`` with ``N >= 2``.
    k:
        Neighbours, ``1 <= k <= N - 1``.
    chunk_size:
        Points per block: memory ``O(chunk_size * N)``.

    Returns
    -------
    numpy.ndarray
        Shape ``(N,)``, float64.
    """
    x = as_points(points).double()
    if not 1 <= k <= len(x) - 1:
        raise ValueError(f"k must be between 1 and {len(x) - 1}, got {k}")
    out = np.empty(len(x), dtype=np.float64)
    for start in range(0, len(x), chunk_size):
        d = pairwise_sq_dists(x[start : start + chunk_size], x)
        rows = torch.arange(len(d))
        d[rows, rows + start] = float("inf")  # not its own neighbour
        out[start : start + chunk_size] = (
            d.topk(k, dim=1, largest=False).values.sqrt().mean(dim=1).numpy()
        )
    return out
