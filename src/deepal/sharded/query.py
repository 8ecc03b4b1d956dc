"""The public entry point: a strategy's query over a pool split into shards.

:class:`ShardedPool` splits a pool into contiguous blocks, one per worker (in this process,
or Ray actors with ``backend="ray"``); :meth:`ShardedPool.query` then runs a strategy's query
with the pool's inference and the selection's passes on the workers:

- softmax uncertainty strategies (``LeastConfidence``, ``MarginSampling``,
  ``EntropySampling`` with ``acquisition="top_n"``): per-shard top-n, merged;
- ``KCenterGreedy``: the distributed running minimum of :mod:`deepal.sharded.kcenter`;
- ``KMeansSampling``: distributed Lloyd iterations (:mod:`deepal.sharded.kmeans`).

Their picks are the single-process ones (same candidates, same tie-breaking, same seeds;
k-center's near-ties are settled on exact distances: see :mod:`~deepal.sharded.kcenter`).
Every other strategy (MC dropout, BALD, BatchBALD, BAIT, BADGE...) cannot be sharded exactly
and runs its own query on the driver, over the candidates ``max_candidates`` keeps.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any

import numpy as np

from deepal.data.pool import Data
from deepal.errors import DeepALError
from deepal.nets.net import Net
from deepal.sharded.group import LocalShards, Shards
from deepal.sharded.kcenter import sharded_k_center_greedy
from deepal.sharded.kmeans import sharded_kmeans_centres, sharded_nearest_distinct
from deepal.sharded.merge import merge_top_n
from deepal.sharded.ray_shards import RayShards
from deepal.sharded.worker import PoolSlice, ShardWorker
from deepal.strategies.base import Strategy, _checked_query
from deepal.strategies.kcenter import KCenterGreedy
from deepal.strategies.kmeans import KMeansSampling
from deepal.strategies.posterior import PosteriorStrategy
from deepal.strategies.uncertainty import UncertaintySampling

BACKENDS = ("local", "ray")


def shard_bounds(n: int, n_shards: int) -> list[tuple[int, int]]:
    """``n_shards`` contiguous blocks ``(start, stop)`` of ``range(n)``, sizes within one.

    >>> shard_bounds(10, 3)
    [(0, 3), (3, 7), (7, 10)]
    """
    ends = [round(n * i / n_shards) for i in range(n_shards + 1)]
    return list(zip(ends[:-1], ends[1:], strict=True))


def is_sharded(strategy: Strategy) -> bool:
    """Whether :meth:`ShardedPool.query` shards ``strategy``'s query (else it runs on the
    driver).

    >>> is_sharded(object())
    False
    """
    if type(strategy) in (KCenterGreedy, KMeansSampling):
        return True
    # The workers compute score(softmax): a subclass scoring otherwise runs on the driver.
    return (isinstance(strategy, UncertaintySampling) and isinstance(strategy, PosteriorStrategy)
            and type(strategy).sample_score is UncertaintySampling.sample_score
            and type(strategy).query is PosteriorStrategy.query
            and strategy.posterior_estimate.name == "softmax" and strategy.acquisition == "top_n")


class ShardedPool:
    """A pool split into ``n_shards`` blocks held by workers, each with a copy of the net.

    Parameters
    ----------
    dataset:
        The pool (its inputs are sent to the workers once, block by block).
    net:
        The network; the workers load its current weights at every query.
    n_shards:
        Number of blocks and workers.
    backend:
        ``"local"`` (workers in this process) or ``"ray"`` (Ray actors).
    address:
        With ``backend="ray"``: the cluster (``"auto"``, ``"host:port"``...), when Ray is
        not initialised in this process; ``None`` starts a local Ray for the pool's life.
    shard_options:
        With ``backend="ray"``: Ray actor options per shard (``num_cpus``, ``num_gpus``,
        ``resources``...).

    Examples
    --------
    >>> pool = ShardedPool(strategy.dataset, strategy.net, 4, backend="ray")  # doctest: +SKIP
    >>> picked = pool.query(strategy, 100)  # doctest: +SKIP
    """

    def __init__(self, dataset: Data, net: Net, n_shards: int = 2, backend: str = "local",
                 address: str | None = None,
                 shard_options: Sequence[dict[str, Any]] | None = None) -> None:
        if backend not in BACKENDS:
            raise DeepALError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
        if isinstance(n_shards, bool) or not isinstance(n_shards, int) or n_shards < 1:
            raise DeepALError(f"n_shards must be an integer >= 1, got {n_shards!r}")
        if n_shards > dataset.n_pool:
            raise DeepALError(f"n_shards={n_shards} exceeds the pool's {dataset.n_pool} examples")
        self.dataset, self.net = dataset, net
        self.bounds = shard_bounds(dataset.n_pool, n_shards)
        sources = [PoolSlice(dataset.X_train[a:b], dataset.handler, dataset.n_classes, a)
                   for a, b in self.bounds]
        self.shards: Shards = (
            RayShards(sources, net, address, shard_options) if backend == "ray"
            else LocalShards([ShardWorker(source, net) for source in sources]))

    def __enter__(self) -> ShardedPool:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """End the workers (and a Ray started for them)."""
        if isinstance(self.shards, RayShards):
            self.shards.close()

    def query(self, strategy: Strategy, n: int) -> np.ndarray:
        """``strategy.query(n)``'s picks, computed over the shards where that is exact.

        Parameters
        ----------
        strategy:
            A strategy on this pool's data set and net.
        n:
            Number of examples to pick.

        Returns
        -------
        numpy.ndarray
            ``n`` pool indices (int64), as the strategy's own query returns them.
        """
        if strategy.dataset is not self.dataset or strategy.net is not self.net:
            raise DeepALError("the strategy's data set and net must be the ShardedPool's own")
        if not is_sharded(strategy):
            return strategy.query(n)
        return _checked_sharded(strategy, n, self)

    # -- one query, with the candidates' positions split by shard -------------------------

    def split(self, idxs: np.ndarray) -> list[tuple[np.ndarray, int]]:
        """For sorted pool indices ``idxs``: per shard, the local rows among them and the
        global position (in ``idxs``) of the first."""
        out = []
        for a, b in self.bounds:
            lo, hi = np.searchsorted(idxs, [a, b])
            out.append((idxs[lo:hi] - a, int(lo)))
        return out

    def embed(self, idxs: np.ndarray, labeled: np.ndarray, chunk_size: int) -> None:
        self.shards.call("set_weights", self.net.state_dict())
        self.shards.call_each("embed", [(local, labeled[offset : offset + len(local)], offset,
                                         chunk_size) for local, offset in self.split(idxs)])


def _sharded(strategy: Strategy, n: int, pool: ShardedPool) -> np.ndarray:
    strategy.last_scores = None  # the scores stay on the workers
    if isinstance(strategy, KCenterGreedy):
        idxs = np.union1d(np.flatnonzero(strategy.dataset.labeled_idxs), strategy.candidate_idxs())
        pool.embed(idxs, strategy.dataset.labeled_idxs[idxs], strategy.chunk_size)
        return idxs[sharded_k_center_greedy(pool.shards, n, rng=strategy.rng)]
    idxs = strategy.candidate_idxs()
    if isinstance(strategy, KMeansSampling):
        pool.embed(idxs, np.zeros(len(idxs), dtype=bool), 1024)
        centres = sharded_kmeans_centres(pool.shards, n, strategy.rng)
        return idxs[sharded_nearest_distinct(pool.shards, centres)]
    pool.shards.call("set_weights", pool.net.state_dict())
    score = strategy.score  # type: ignore[attr-defined]
    tops = pool.shards.call_each("top_scores", [(local, score, n, offset)
                                                for local, offset in pool.split(idxs)])
    return idxs[merge_top_n(tops, n)]


# The strategies' own checks: n validated before, the picks' contract after.
_checked_sharded = _checked_query(_sharded)


def sharded_query(strategy: Strategy, n: int, n_shards: int = 2, backend: str = "ray",
                  address: str | None = None,
                  shard_options: Sequence[dict[str, Any]] | None = None) -> np.ndarray:
    """One query over a pool split into ``n_shards`` workers: see :class:`ShardedPool`
    (which keeps its workers for further queries).

    Parameters
    ----------
    strategy:
        The strategy whose query to run.
    n:
        Number of examples to pick.
    n_shards, backend, address, shard_options:
        As for :class:`ShardedPool`.

    Returns
    -------
    numpy.ndarray
        ``n`` pool indices, the picks of ``strategy.query(n)``.

    Examples
    --------
    >>> picked = sharded_query(strategy, 100, n_shards=4, backend="ray")  # doctest: +SKIP
    """
    with ShardedPool(strategy.dataset, strategy.net, n_shards, backend, address,
                     shard_options) as pool:
        return pool.query(strategy, n)
