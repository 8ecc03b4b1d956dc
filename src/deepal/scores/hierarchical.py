"""Cluster-Margin's pieces (Citovsky et al., 2021): average-linkage clusters of the pool, and
round-robin sampling over clusters.

Hierarchical agglomerative clustering needs the ``m (m - 1) / 2`` pairwise distances of the
points it clusters (``O(m^2)`` memory), so :func:`average_linkage_clusters` clusters a random
subset of at most ``max_points`` points and gives every other point the cluster of its nearest
clustered point (in blocks): memory ``O(max_points^2)``, whatever the pool size.
"""

from __future__ import annotations

import numpy as np
import scipy.cluster.hierarchy
import scipy.spatial.distance
import torch

from deepal.scores.neighbours import as_points, nearest


def average_linkage_clusters(
    points: torch.Tensor | np.ndarray,
    rng: np.random.Generator,
    distance_threshold: float | None = None,
    n_clusters: int | None = None,
    max_points: int = 5000,
) -> np.ndarray:
    """Cluster ids of every point from an average-linkage (UPGMA) clustering.

    The dendrogram is cut at ``distance_threshold`` (Euclidean; clusters whose average
    inter-point distance is at most the threshold are merged), or, without a threshold, into
    ``n_clusters`` clusters, ``round(sqrt(m))`` by default for ``m`` clustered points.

    Parameters
    ----------
    points:
        Shape ``(N, d)``.
    rng:
        Draws the clustered subset when ``N > max_points``.
    distance_threshold:
        Cut height; ``None`` cuts into ``n_clusters``.
    n_clusters:
        Number of clusters when there is no threshold.
    max_points:
        Most points clustered directly (about ``4 * max_points^2`` bytes of distances).

    Returns
    -------
    numpy.ndarray
        Shape ``(N,)`` int64 cluster ids ``0 .. k - 1``.
    """
    x = as_points(points)
    if len(x) == 0:
        return np.zeros(0, dtype=np.int64)
    subset = np.arange(len(x)) if len(x) <= max_points else np.sort(
        rng.choice(len(x), size=max_points, replace=False))
    sample = x[torch.as_tensor(subset)].double().numpy()
    if len(sample) == 1:
        ids = np.zeros(1, dtype=np.int64)
    else:
        tree = scipy.cluster.hierarchy.linkage(
            scipy.spatial.distance.pdist(sample), method="average")
        if distance_threshold is not None:
            ids = scipy.cluster.hierarchy.fcluster(tree, distance_threshold, "distance")
        else:
            k = n_clusters or max(1, round(np.sqrt(len(sample))))
            ids = scipy.cluster.hierarchy.fcluster(tree, k, "maxclust")
        ids = np.unique(ids, return_inverse=True)[1].astype(np.int64)  # 0 .. k - 1
    if len(subset) == len(x):
        return ids
    return ids[nearest(x, x[torch.as_tensor(subset)])[0]]


def round_robin(clusters: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Pick ``n`` positions one cluster at a time, smallest cluster first, a random member
    each time; exhausted clusters drop out of the rotation.

    Parameters
    ----------
    clusters:
        Shape ``(M,)``: the cluster id of each candidate.
    n:
        Picks, ``0 <= n <= M``.
    rng:
        Orders the members within each cluster.

    Returns
    -------
    numpy.ndarray
        ``n`` distinct positions into ``clusters`` (int64), in the order picked.
    """
    clusters = np.asarray(clusters)
    if not 0 <= n <= len(clusters):
        raise ValueError(f"cannot pick {n} of {len(clusters)} candidates")
    ids, sizes = np.unique(clusters, return_counts=True)
    order = ids[np.lexsort((ids, sizes))]  # smallest first, then the lower id
    members = [rng.permutation(np.flatnonzero(clusters == c)) for c in order]
    # Round r takes the r-th member of every cluster that still has one.
    rounds = [(r, i) for i, m in enumerate(members) for r in range(len(m))]
    rounds.sort()
    return np.asarray([members[i][r] for r, i in rounds[:n]], dtype=np.int64)
