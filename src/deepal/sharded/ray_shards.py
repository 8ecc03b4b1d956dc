"""Shards as Ray actors: one :class:`~deepal.sharded.worker.ShardWorker` per actor.

Actors are not restarted: a restarted actor would come back without its running state, and
its answers would be wrong picks. A worker that dies during a query fails the query with
:class:`ShardLostError` instead.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from deepal.errors import DeepALError
from deepal.nets.net import Net
from deepal.sharded.group import payload_bytes
from deepal.sharded.worker import PoolSlice, ShardWorker, SyntheticSlice


class ShardLostError(DeepALError):
    """A shard's worker died (its process or its node ended) during a sharded query.

    No picks are returned: the running state of the query was on that worker. Build a new
    :class:`~deepal.sharded.ShardedPool` and query again.

    Examples
    --------
    >>> try:
    ...     pool.query(strategy, 100)          # doctest: +SKIP
    ... except ShardLostError:
    ...     pool = ShardedPool(data, net, 4, backend="ray")
    """


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise DeepALError(
            'backend="ray" needs Ray, which is not installed: pip install "deepal[ray]" '
            '(or use backend="local")'
        ) from None
    return ray


class RayShards:
    """Shard workers on a Ray cluster, answering in shard order.

    Parameters
    ----------
    sources:
        One source of rows per shard.
    net:
        The network each worker copies (``None`` for synthetic sources).
    address:
        The cluster to connect to when Ray is not initialised in this process (``"auto"``,
        ``"host:port"``...); ``None`` starts a local Ray, shut down by :meth:`close`.
    options:
        Ray actor options per shard (``num_cpus``, ``num_gpus``, ``resources``...); default
        one CPU each, spread over the nodes.

    Examples
    --------
    >>> shards = RayShards([SyntheticSlice(0, 10, 4)], None)          # doctest: +SKIP
    >>> shards.call("embed", np.arange(10), np.zeros(10, bool), 0)   # doctest: +SKIP
    [10]
    """

    def __init__(self, sources: Sequence[PoolSlice | SyntheticSlice], net: Net | None,
                 address: str | None = None,
                 options: Sequence[dict[str, Any]] | None = None) -> None:
        ray = self.ray = _ray()
        self.started_here = not ray.is_initialized()
        if self.started_here:
            try:
                ray.init(address=address, include_dashboard=False,
                         logging_level=logging.WARNING)
            except (ConnectionError, RuntimeError, ValueError) as error:
                raise DeepALError(
                    f"cannot start or reach Ray at {address or 'a local instance'!r}: {error}"
                ) from error
        if options is not None and len(options) != len(sources):
            raise DeepALError(f"{len(options)} actor options for {len(sources)} shards")
        actor = ray.remote(ShardWorker)
        net_ref = ray.put(net)
        self.actors = [
            actor.options(**{"num_cpus": 1, "scheduling_strategy": "SPREAD",
                             **(options[i] if options else {}), "max_restarts": 0}
                          ).remote(source, net_ref)
            for i, source in enumerate(sources)
        ]
        self.messages = 0
        self.bytes_moved = 0

    def __len__(self) -> int:
        return len(self.actors)

    def _get(self, refs: list[Any]) -> list[Any]:
        ray = self.ray
        try:
            answers = ray.get(refs)
        except ray.exceptions.RayActorError as error:
            raise ShardLostError(
                f"a shard's Ray worker died during the query ({type(error).__name__}); "
                "no picks were made: build a new ShardedPool and query again"
            ) from error
        except ray.exceptions.RayTaskError as error:
            cause = error.cause if isinstance(error.cause, Exception) else error
            raise cause from None
        self.bytes_moved += payload_bytes(answers)
        return list(answers)

    def call(self, method: str, *args: Any) -> list[Any]:
        # Arguments shared by every shard are put in the object store once.
        shared = [self.ray.put(a) if payload_bytes(a) > 4096 else a for a in args]
        self.messages += len(self.actors)
        self.bytes_moved += payload_bytes(args) * len(self.actors)
        return self._get([a.call.remote(method, *shared) for a in self.actors])

    def call_each(self, method: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        if len(args) != len(self.actors):
            raise ValueError(f"{len(args)} argument tuples for {len(self.actors)} shards")
        self.messages += len(self.actors)
        self.bytes_moved += payload_bytes(list(args))
        return self._get([a.call.remote(method, *x)
                          for a, x in zip(self.actors, args, strict=True)])

    def call_one(self, index: int, method: str, *args: Any) -> Any:
        self.messages += 1
        self.bytes_moved += payload_bytes(args)
        return self._get([self.actors[index].call.remote(method, *args)])[0]

    def close(self) -> None:
        """End the actors, and the Ray this object started, if it did."""
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors = []
        if self.started_here:
            self.ray.shutdown()
