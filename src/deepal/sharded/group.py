"""How the driver talks to its shards: one call per shard, answers in shard order.

The selection algorithms (:mod:`~deepal.sharded.kcenter`, :mod:`~deepal.sharded.kmeans`) see
only this interface, so the same code runs over shards in this process
(:class:`LocalShards`) or on Ray actors (:class:`deepal.sharded.ray_shards.RayShards`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class Shards(Protocol):
    """A fixed, ordered set of shards, each of which answers ``method(*args)``."""

    def __len__(self) -> int: ...

    def call(self, method: str, *args: Any) -> list[Any]:
        """Call ``method(*args)`` on every shard; the answers in shard order."""
        ...

    def call_each(self, method: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Call ``method(*args[i])`` on shard ``i``; the answers in shard order."""
        ...

    def call_one(self, index: int, method: str, *args: Any) -> Any:
        """Call ``method(*args)`` on shard ``index`` only."""
        ...


class LocalShards:
    """Shards that are objects in this process.

    Parameters
    ----------
    shards:
        One object per shard with the methods the algorithm calls (an
        :class:`~deepal.sharded.shard.EmbeddingShard`, a
        :class:`~deepal.sharded.worker.ShardWorker`...).

    Examples
    --------
    >>> LocalShards([[1, 2], [3]]).call("count", 3)
    [0, 1]
    """

    def __init__(self, shards: Sequence[Any]) -> None:
        self.shards = list(shards)
        #: Messages sent to shards so far (for the communication cost).
        self.messages = 0

    def __len__(self) -> int:
        return len(self.shards)

    def call(self, method: str, *args: Any) -> list[Any]:
        return self.call_each(method, [args] * len(self.shards))

    def call_each(self, method: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        if len(args) != len(self.shards):
            raise ValueError(f"{len(args)} argument tuples for {len(self.shards)} shards")
        self.messages += len(self.shards)
        return [getattr(shard, method)(*a) for shard, a in zip(self.shards, args, strict=True)]

    def call_one(self, index: int, method: str, *args: Any) -> Any:
        self.messages += 1
        return getattr(self.shards[index], method)(*args)
