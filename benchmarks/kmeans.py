"""KMeansSampling's selection: deepal (kmeans_centres + nearest_distinct) vs scikit-learn
KMeans(n_clusters=n) on the whole pool, as the original does."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.cluster import KMeans

from deepal.scores.clustering import kmeans_centres, nearest_distinct

from benchmarks.measure import bench_device, measure, report

SMALL = {"n_pool": 10_000, "dim": 50, "n": 200}
FULL = {"n_pool": 50_000, "dim": 50, "n": 1_000}
SEED = 0


def setup(size: dict):
    """Embedding-like data: a mixture of 100 Gaussian blobs, float32."""
    rng = np.random.default_rng(1)
    blobs = rng.standard_normal((100, size["dim"])) * 4.0
    x = blobs[rng.integers(100, size=size["n_pool"])] + rng.standard_normal(
        (size["n_pool"], size["dim"]))
    return x.astype(np.float32), size["n"]


def _seed() -> int:
    # kmeans_centres draws its clustering seed this way; the reference uses the same seed.
    return int(np.random.default_rng(SEED).integers(2**31 - 1))


def deepal(inputs, max_iter: int = 300):
    x, n = inputs
    emb = torch.from_numpy(x).to(bench_device())
    centres = kmeans_centres(emb, n, np.random.default_rng(SEED), max_iter=max_iter)
    picks = nearest_distinct(emb, centres, metric="sqeuclidean")
    return centres.cpu().numpy(), picks


def deepal_15_iterations(inputs):
    return deepal(inputs, max_iter=15)


def sklearn_reference(inputs):
    """KMeans on every point, then per cluster the member nearest its centre."""
    x, n = inputs
    model = KMeans(n_clusters=n, n_init=1, random_state=_seed()).fit(x)
    labels = model.predict(x)
    dist = ((x - model.cluster_centers_[labels]) ** 2).sum(axis=1)
    picks = [np.flatnonzero(labels == i)[dist[labels == i].argmin()]
             for i in range(n) if (labels == i).any()]
    return model.cluster_centers_, np.asarray(picks)


def inertia(x: np.ndarray, centres: np.ndarray, chunk: int = 4096) -> float:
    """Sum over points of the squared distance to the nearest centre (float64)."""
    x, c = x.astype(np.float64), centres.astype(np.float64)
    c_sq = (c * c).sum(axis=1)
    total = 0.0
    for s in range(0, len(x), chunk):
        b = x[s:s + chunk]
        d = (b * b).sum(axis=1)[:, None] + c_sq[None, :] - 2.0 * b @ c.T
        total += float(np.maximum(d.min(axis=1), 0.0).sum())
    return total


def run(full: bool) -> None:
    size = FULL if full else SMALL
    r = measure(__name__, "sklearn_reference", size)
    x, _ = setup(size)
    i_r = inertia(x, r.result[0])
    for fn, label in (("deepal", "to convergence"), ("deepal_15_iterations", "max_iter=15")):
        d = measure(__name__, fn, size)
        i_d = inertia(x, d.result[0])
        ratio = r.seconds / d.seconds
        verdict = "met" if ratio >= 10 and i_d <= i_r else "MISSED"
        report(f"kmeans ({label}): pool {size['n_pool']:,} x {size['dim']}-d, "
               f"n = {size['n']:,}", d, r, [
            f"inertia deepal {i_d:.6g} vs sklearn KMeans {i_r:.6g} "
            f"(deepal/sklearn = {i_d / i_r:.4f})",
            f"distinct picks: deepal {len(set(d.result[1]))}, "
            f"reference {len(set(r.result[1]))}",
            f"target >= 10x faster at equal or lower inertia: {verdict}",
        ], ref_label="sklearn KMeans")
