"""What it takes to rebuild a lost shard: the calls that made its state, to replay on a new
worker.

A shard's state is its network's weights, its embeddings (from the weights it had when it
embedded them) and the selection's running state, built by the calls since then. A worker
whose every call is deterministic, given its source of rows (a pool's slice, re-read, or a
synthetic block, regenerated), comes back to the same state when those calls are made again
in order: :class:`CallLog` keeps them, shard by shard.
"""

from __future__ import annotations

from typing import Any

#: Calls that change a shard's state; every other call only reads it.
STATEFUL = frozenset({"set_weights", "embed", "start", "step", "partials"})

Call = tuple[str, tuple[Any, ...]]


class CallLog:
    """Per shard, the calls that rebuild its state: the weights it embedded with, its last
    ``embed``, the stateful calls since, and its latest weights.

    Parameters
    ----------
    n_shards:
        Number of shards.

    Examples
    --------
    >>> log = CallLog(1)
    >>> for method, args in [("set_weights", ("w1",)), ("embed", (None,)), ("counts", ()),
    ...                      ("start", ("c",)), ("set_weights", ("w2",))]:
    ...     log.record(0, method, args)
    >>> log.replay(0)
    [('set_weights', ('w1',)), ('embed', (None,)), ('start', ('c',)), ('set_weights', ('w2',))]
    """

    def __init__(self, n_shards: int) -> None:
        self.since_embed: list[list[Call]] = [[] for _ in range(n_shards)]
        self.weights: list[Call | None] = [None] * n_shards

    def record(self, shard: int, method: str, args: tuple[Any, ...]) -> None:
        """Note that ``method(*args)`` succeeded on ``shard``."""
        if method == "set_weights":
            self.weights[shard] = (method, args)
        elif method == "embed":  # a new state: what came before it no longer matters
            weights = self.weights[shard]
            self.since_embed[shard] = ([weights] if weights else []) + [(method, args)]
        elif method in STATEFUL:
            self.since_embed[shard].append((method, args))

    def replay(self, shard: int) -> list[Call]:
        """The calls that bring a new worker for ``shard`` to the lost one's state, in order."""
        weights = self.weights[shard]
        calls = list(self.since_embed[shard])
        if weights is not None and (not calls or calls[0] is not weights):
            calls.append(weights)
        return calls
