"""Large-pool options: memory-mapped embeddings, no hidden float64 copies, streaming scores."""

from __future__ import annotations

import numpy as np
import torch

import deepal
from deepal.scores.clustering import kmeans_centres
from deepal.scores.kcenter import k_center_greedy


def test_memmapped_embeddings_equal_in_memory_ones(pool, tiny_net, tmp_path) -> None:
    strategy = deepal.KCenterGreedy(pool, tiny_net, random_state=0)
    strategy.train()
    data = pool.get_inputs(np.arange(pool.n_pool))
    in_memory = tiny_net.get_embeddings(data)
    path = tmp_path / "emb.npy"
    mapped = tiny_net.get_embeddings(data, memmap=path)
    torch.testing.assert_close(mapped, in_memory, rtol=0, atol=0)
    on_disk = np.load(path, mmap_mode="r")  # a standard .npy file others can open
    assert on_disk.shape == (pool.n_pool, 16) and on_disk.dtype == np.float32
    np.testing.assert_array_equal(on_disk, in_memory.numpy())


def test_strategies_pick_the_same_with_a_memmap_file(pool, tiny_net, tmp_path) -> None:
    deepal.seed_everything(0)
    plain = deepal.KCenterGreedy(pool, tiny_net, random_state=0)
    plain.train()
    picks = {}
    for name, kwargs in (("plain", {}), ("memmap", {"embeddings_file": tmp_path / "e.npy"})):
        for cls in (deepal.KCenterGreedy, deepal.KMeansSampling):
            strategy = cls(pool, tiny_net, random_state=0, **kwargs)
            picks[name, cls.__name__] = strategy.query(7).tolist()
    assert picks["plain", "KCenterGreedy"] == picks["memmap", "KCenterGreedy"]
    assert picks["plain", "KMeansSampling"] == picks["memmap", "KMeansSampling"]
    assert (tmp_path / "e.npy").exists()


def test_float32_pools_are_computed_in_float32_with_float64_picks() -> None:
    """A float32 pool is not promoted to float64 (which would double the memory of a large
    pool), and the picks are those of a float64 computation."""
    x = torch.randn(300, 8)
    centres = kmeans_centres(x, 5, np.random.default_rng(0))
    in_float64 = kmeans_centres(x.double(), 5, np.random.default_rng(0))
    # Only the k centres are float64; the Lloyd passes ran in float32: they round as float32.
    assert centres.dtype == torch.float64
    torch.testing.assert_close(centres, in_float64, rtol=0, atol=1e-5)
    assert not torch.equal(centres, in_float64)
    labeled = np.zeros(300, dtype=bool)
    labeled[:10] = True
    # float32 and float64 computations agree on well-separated distances.
    assert k_center_greedy(x, labeled, 20).tolist() == k_center_greedy(
        x.double(), labeled, 20).tolist()
