"""TypiClust's selection (Hacohen et al., 2022): the most typical point of the largest
uncovered clusters.

Typicality is the inverse of the mean Euclidean distance to the ``K`` nearest neighbours:
high in dense regions. The points are clustered by k-means into ``labeled + n`` clusters (at
most ``max_clusters``); each pick goes to the cluster with the fewest labeled or picked
points, the largest among those (so first to the largest clusters no labeled point covers),
and takes its unlabeled point of highest typicality within the cluster.
"""

from __future__ import annotations

import numpy as np
import torch

from deepal.scores.clustering import kmeans_centres
from deepal.scores.neighbours import as_points, knn_mean_distance, nearest


def typicality(points: torch.Tensor | np.ndarray, k: int = 20) -> np.ndarray:
    """``1 / mean distance to the k nearest other points``, shape ``(N,)``.

    ``k`` is lowered to ``N - 1`` for small sets; a single point has typicality ``inf``;
    a point with ``k`` duplicates too.
    """
    x = as_points(points)
    if len(x) < 2:
        return np.full(len(x), np.inf)
    with np.errstate(divide="ignore"):
        return 1.0 / knn_mean_distance(x, min(k, len(x) - 1))


def typiclust_select(
    embeddings: torch.Tensor | np.ndarray,
    labeled_mask: np.ndarray,
    n: int,
    rng: np.random.Generator,
    k_neighbours: int = 20,
    max_clusters: int | None = 500,
) -> np.ndarray:
    """Pick ``n`` unlabeled points, TypiClust's way.

    Parameters
    ----------
    embeddings:
        Shape ``(N, d)``: labeled and unlabeled points.
    labeled_mask:
        Shape ``(N,)`` booleans.
    n:
        Points to pick, at most the unlabeled count.
    rng:
        Seeds the k-means.
    k_neighbours:
        ``K`` of the typicality (the paper's 20).
    max_clusters:
        Cap on the number of clusters (the authors' code caps it at 500, which keeps k-means
        cheap on a large budget); ``None`` for no cap. Once every cluster holds a labeled or
        picked point, picks go on from the least covered, largest clusters.

    Returns
    -------
    numpy.ndarray
        ``n`` distinct positions of unlabeled points (int64), in the order picked.
    """
    x = as_points(embeddings, "embeddings")
    labeled = np.asarray(labeled_mask, dtype=bool)
    if not 0 <= n <= int((~labeled).sum()):
        raise ValueError(f"cannot pick {n} of {int((~labeled).sum())} unlabeled points")
    if n == 0:
        return np.empty(0, dtype=np.int64)
    k = min(int(labeled.sum()) + n, len(x), max_clusters or len(x))
    cluster, _ = nearest(x, kmeans_centres(x, k, rng))
    size = np.bincount(cluster, minlength=k)
    taken = labeled.copy()
    covers = np.bincount(cluster[labeled], minlength=k)
    open_left = np.bincount(cluster[~labeled], minlength=k)  # unlabeled, unpicked per cluster
    scores: dict[int, np.ndarray] = {}  # typicality, computed for the clusters visited only
    picks: list[int] = []
    for _ in range(n):
        # Fewest covers first, then the largest cluster, then the lowest cluster index.
        order = np.lexsort((np.arange(k), -size, covers))
        c = int(next(c for c in order if open_left[c] > 0))
        members = np.flatnonzero(cluster == c)
        if c not in scores:
            scores[c] = typicality(x[torch.as_tensor(members)], k_neighbours)
        candidates = np.where(taken[members], -np.inf, scores[c])
        pick = int(members[int(np.argmax(candidates))])  # first maximum: lowest index
        picks.append(pick)
        taken[pick] = True
        covers[c] += 1
        open_left[c] -= 1
    return np.asarray(picks, dtype=np.int64)
