"""Shards as Ray actors: one :class:`~deepal.sharded.worker.ShardWorker` per actor.

Actors are not restarted: a restarted actor would come back without its running state, and
its answers would be wrong picks. A worker that dies during a query fails the query with
:class:`ShardLostError` instead.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence
from typing import Any

from deepal.errors import DeepALError, first_line
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
            'the Ray query backend needs Ray, which is not installed: pip install "deepal[ray]" '
            '(or use the local backend)'
        ) from None
    return ray


def reach(address: str | None, resolve: bool = False) -> Any:
    """Ray, imported, with the cluster at ``address`` checked to answer.

    A ``HOST:PORT`` (or ``ray://HOST:PORT``) that accepts no connection is refused at once:
    ``ray.init`` would retry it for minutes. ``"auto"`` is checked only with ``resolve``
    (by connecting, then disconnecting); ``None`` or a Ray already initialised in this process
    need no check.

    Parameters
    ----------
    address:
        The cluster's address, or ``None``.
    resolve:
        Also check that ``"auto"`` finds a running cluster.

    Returns
    -------
    module
        The ``ray`` module.

    Raises
    ------
    DeepALError
        Ray is not installed, or the cluster does not answer.

    Examples
    --------
    >>> reach("127.0.0.1:9")  # doctest: +SKIP
    Traceback (most recent call last):
    ...
    deepal.errors.DeepALError: cannot reach the Ray cluster at '127.0.0.1:9' (Connection ...
    """
    ray = _ray()
    if address is None or ray.is_initialized():
        return ray
    fix = ("check the address, start the cluster (ray start --head) or leave the address "
           "out to start a Ray on this machine")
    if address == "auto":
        if resolve:
            try:
                ray.init(address="auto", include_dashboard=False, logging_level=logging.ERROR)
            except ConnectionError as error:
                raise DeepALError(f"cannot find a Ray cluster (address 'auto': "
                                  f"{first_line(error)}): {fix}") from None
            ray.shutdown()
        return ray
    host, port = address.removeprefix("ray://").rsplit(":", 1)
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as error:
        raise DeepALError(f"cannot reach the Ray cluster at {address!r} "
                          f"({error.strerror or first_line(error)}): {fix}") from None
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
        ray = self.ray = reach(address)
        if options is not None and len(options) != len(sources):
            raise DeepALError(f"{len(options)} actor options for {len(sources)} shards")
        self.started_here = not ray.is_initialized()
        if self.started_here:
            # A Ray started here offers a CPU per shard at least: else the shards would wait
            # for CPUs forever.
            cpus = None if address else max(os.cpu_count() or 1, len(sources))
            try:
                ray.init(address=address, num_cpus=cpus, include_dashboard=False,
                         logging_level=logging.WARNING)
            except (ConnectionError, RuntimeError, ValueError) as error:
                raise DeepALError(
                    f"cannot start or reach Ray at {address or 'a local instance'!r}: {error}"
                ) from error
        self.actors: list[Any] = []
        if options is None:
            self._check_cpus(len(sources))
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

    def _check_cpus(self, n_shards: int) -> None:
        """Refuse more shards (of one CPU each) than the cluster has CPUs: they would wait."""
        cpus = self.ray.cluster_resources().get("CPU", 0)
        if cpus < n_shards:
            self.close()
            raise DeepALError(f"the Ray cluster has {cpus:g} CPUs for {n_shards} shards of one "
                              f"CPU each: ask for at most {int(cpus)} shards, or add nodes")

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
