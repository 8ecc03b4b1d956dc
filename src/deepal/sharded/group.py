"""How the driver talks to its shards: one call per shard, answers in shard order.

The selection algorithms (:mod:`~deepal.sharded.kcenter`, :mod:`~deepal.sharded.kmeans`) see
only this interface, so the same code runs over shards in this process
(:class:`LocalShards`) or on Ray actors (:class:`deepal.sharded.ray_shards.RayShards`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import torch


def payload_bytes(obj: Any) -> int:
    """Bytes of the numbers in a message: tensors' and arrays' data, 8 per scalar, the sum
    over containers (not the serialisation's framing, which is small beside a row).

    >>> payload_bytes((torch.zeros(4), 1, [np.zeros(2)]))
    40
    """
    if isinstance(obj, torch.Tensor):
        return obj.element_size() * obj.nelement()
    if isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    if isinstance(obj, (list, tuple)):
        return sum(payload_bytes(item) for item in obj)
    if isinstance(obj, dict):
        return sum(payload_bytes(item) for item in obj.values())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return sum(payload_bytes(getattr(obj, f.name)) for f in dataclasses.fields(obj))
    if isinstance(obj, (int, float, bool, np.number)):
        return 8
    return 0


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
        One object per shard whose ``call(method, *args)`` runs ``method`` (an
        :class:`~deepal.sharded.shard.EmbeddingShard`, a
        :class:`~deepal.sharded.worker.ShardWorker`...).

    Examples
    --------
    >>> from deepal.sharded.shard import EmbeddingShard
    >>> shard = EmbeddingShard(torch.zeros(3, 2), np.array([True, False, False]), offset=0)
    >>> LocalShards([shard]).call("counts")
    [(3, 2)]
    """

    def __init__(self, shards: Sequence[Any]) -> None:
        self.shards = list(shards)
        #: Messages sent to shards, and bytes of numbers they carried both ways, so far.
        self.messages = 0
        self.bytes_moved = 0

    def __len__(self) -> int:
        return len(self.shards)

    def call(self, method: str, *args: Any) -> list[Any]:
        return self.call_each(method, [args] * len(self.shards))

    def call_each(self, method: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        if len(args) != len(self.shards):
            raise ValueError(f"{len(args)} argument tuples for {len(self.shards)} shards")
        self.messages += len(self.shards)
        answers = [shard.call(method, *a) for shard, a in zip(self.shards, args, strict=True)]
        self.bytes_moved += payload_bytes(list(args)) + payload_bytes(answers)
        return answers

    def call_one(self, index: int, method: str, *args: Any) -> Any:
        self.messages += 1
        answer = self.shards[index].call(method, *args)
        self.bytes_moved += payload_bytes(args) + payload_bytes(answer)
        return answer
