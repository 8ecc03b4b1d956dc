"""Shards as Ray actors: one :class:`~deepal.sharded.worker.ShardWorker` per actor.

Ray does not restart the actors: a restarted actor would come back without its running state,
and its answers would be wrong picks. Instead, a call whose worker died is made again, once,
on a new worker for that shard, brought to the lost one's state first by replaying the calls
that made it (:mod:`~deepal.sharded.replay`): its rows are re-read or regenerated from the
same source, so the picks are the same. If that fails too, the query fails with
:class:`ShardLostError`.
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
from deepal.sharded.replay import CallLog
from deepal.sharded.worker import PoolSlice, ShardWorker, SyntheticSlice


class ShardLostError(DeepALError):
    """A shard's worker died (its process or its node ended) during a sharded query, and so
    did the worker re-created for it (or it could not be placed).

    No picks are returned. Check the cluster, build a new
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
    placement_timeout:
        Seconds a worker re-created for a lost one may take to start: one that cannot be
        placed (its node gone, no CPU left) fails the query instead of waiting for ever.

    Examples
    --------
    >>> shards = RayShards([SyntheticSlice(0, 10, 4)], None)          # doctest: +SKIP
    >>> shards.call("embed", np.arange(10), np.zeros(10, bool), 0)   # doctest: +SKIP
    [10]
    """

    def __init__(self, sources: Sequence[PoolSlice | SyntheticSlice], net: Net | None,
                 address: str | None = None,
                 options: Sequence[dict[str, Any]] | None = None,
                 placement_timeout: float = 120.0) -> None:
        ray = self.ray = reach(address)
        self.placement_timeout = placement_timeout
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
        self.sources, self.options = list(sources), options
        self.worker = ray.remote(ShardWorker)
        self.net_ref = ray.put(net)
        self.actors = [self._new_actor(i) for i in range(len(sources))]
        self.log = CallLog(len(sources))
        #: Shards re-created so far, after their workers were lost.
        self.recreated = 0
        self.messages = 0
        self.bytes_moved = 0

    def _new_actor(self, index: int) -> Any:
        options = self.options[index] if self.options else {}
        return self.worker.options(**{"num_cpus": 1, "scheduling_strategy": "SPREAD", **options,
                                      "max_restarts": 0}
                                   ).remote(self.sources[index], self.net_ref)

    def _check_cpus(self, n_shards: int) -> None:
        """Refuse more shards (of one CPU each) than the cluster has CPUs: they would wait."""
        cpus = self.ray.cluster_resources().get("CPU", 0)
        if cpus < n_shards:
            self.close()
            raise DeepALError(f"the Ray cluster has {cpus:g} CPUs for {n_shards} shards of one "
                              f"CPU each: ask for at most {int(cpus)} shards, or add nodes")

    def __len__(self) -> int:
        return len(self.actors)

    def _answer(self, ref: Any) -> Any:
        """A call's answer; a worker's own error raised as itself, not Ray's wrapper."""
        ray = self.ray
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as error:
            cause = error.cause if isinstance(error.cause, Exception) else error
            raise cause from None

    def _run(self, calls: list[tuple[int, str, tuple[Any, ...]]]) -> list[Any]:
        """Make ``calls`` (shard, method, arguments) at once; their answers in order. A call
        whose worker was lost is made again once on a worker re-created for its shard."""
        ray = self.ray
        sent = [(call, self.actors[call[0]].call.remote(call[1], *call[2])) for call in calls]
        answers = []
        for (index, method, args), ref in sent:
            try:
                answers.append(self._answer(ref))
            except ray.exceptions.RayActorError as error:
                answers.append(self._again(index, method, args, error))
        for index, method, args in calls:
            self.log.record(index, method, args)
        self.bytes_moved += payload_bytes(answers)
        return answers

    def _again(self, index: int, method: str, args: tuple[Any, ...], lost: Exception) -> Any:
        """``method(*args)`` on a new worker for shard ``index``, brought to the lost one's
        state by replaying the calls that made it; :class:`ShardLostError` if that fails."""
        ray = self.ray
        try:
            self.recreate(index)
            return self._answer(self.actors[index].call.remote(method, *args))
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError) as error:
            raise ShardLostError(
                f"shard {index}'s Ray worker died during the query ({type(lost).__name__}), "
                f"and so did the worker re-created for it ({type(error).__name__}); no picks "
                "were made: check the cluster's nodes, then build a new ShardedPool and query "
                "again") from error

    def recreate(self, index: int) -> None:
        """Replace shard ``index``'s worker by a new one, with the same source and the state
        the calls so far gave the old one."""
        self.ray.kill(self.actors[index])
        self.actors[index] = self._new_actor(index)
        self.recreated += 1
        self.ray.get(self.actors[index].call.remote("pid"), timeout=self.placement_timeout)
        for method, args in self.log.replay(index):
            self._answer(self.actors[index].call.remote(method, *args))

    def call(self, method: str, *args: Any) -> list[Any]:
        self.messages += len(self.actors)
        self.bytes_moved += payload_bytes(args) * len(self.actors)
        # Large arguments are put in the object store once, however many shards take them
        # (and a replay takes them from there again).
        shared = tuple(self.ray.put(a) if payload_bytes(a) > 4096 else a for a in args)
        return self._run([(i, method, shared) for i in range(len(self.actors))])

    def call_each(self, method: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        if len(args) != len(self.actors):
            raise ValueError(f"{len(args)} argument tuples for {len(self.actors)} shards")
        self.messages += len(self.actors)
        self.bytes_moved += payload_bytes(list(args))
        return self._run([(i, method, tuple(a)) for i, a in enumerate(args)])

    def call_one(self, index: int, method: str, *args: Any) -> Any:
        self.messages += 1
        self.bytes_moved += payload_bytes(args)
        return self._run([(index, method, args)])[0]

    def close(self) -> None:
        """End the actors, and the Ray this object started, if it did."""
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors = []
        if self.started_here:
            self.ray.shutdown()
