"""A shard's worker: its slice of the pool, a copy of the network, and its selection state.

The same :class:`ShardWorker` runs in this process (``backend="local"``) or as a Ray actor
(``backend="ray"``); the driver reaches it only through :meth:`ShardWorker.call`. Its source
of points is a slice of a real pool (:class:`PoolSlice`, evaluated through the network) or a
synthetic block generated where the worker runs (:class:`SyntheticSlice`, for benchmarks), so
no driver ever holds a whole pool's embeddings.
"""

from __future__ import annotations

import copy
import os
import resource
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from deepal.data.pool import Data, Handler
from deepal.errors import DeepALError
from deepal.nets.net import Net
from deepal.scores.distances import DEFAULT_CHUNK_SIZE
from deepal.scores.uncertainty import margin
from deepal.sharded.merge import ShardTop, shard_top_n
from deepal.sharded.shard import EmbeddingShard

Score = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class PoolSlice:
    """Rows ``start ... stop - 1`` of a pool's inputs, with the pool's handler and classes."""

    X: Any
    handler: Handler
    n_classes: int
    start: int

    def data(self) -> Data:
        return Data(self.X, None, handler=self.handler, n_classes=self.n_classes)

    def inputs(self, local: np.ndarray | None) -> Any:
        """A dataset of rows ``local`` of the slice (all of them for ``None``)."""
        data = self.data()
        return data.get_inputs(np.arange(data.n_pool) if local is None else local)

    def embeddings(self, net: Net | None, local: np.ndarray | None) -> torch.Tensor:
        """The network's embeddings of rows ``local`` of the slice, on the net's device."""
        net = _needs(net)
        return net.get_embeddings(self.inputs(local)).to(net.device)

    def scores(self, net: Net | None, score: Score, local: np.ndarray | None) -> torch.Tensor:
        """``score`` of the softmax probabilities of rows ``local`` (the computation of a
        softmax :class:`~deepal.strategies.uncertainty.UncertaintySampling` strategy)."""
        probs = _needs(net).predict_prob(self.inputs(local))
        return score(probs.unsqueeze(0).mean(dim=0))


@dataclass(frozen=True)
class SyntheticSlice:
    """Rows ``start ... stop - 1`` of a synthetic pool of Gaussian embeddings, generated in
    blocks seeded by ``(seed, block number)``: the same pool however it is sharded (shard
    bounds on multiples of ``block``). Scores are margins of a fixed random linear head."""

    start: int
    stop: int
    dim: int
    seed: int = 0
    n_classes: int = 10
    block: int = 65_536

    def _blocks(self) -> Iterator[torch.Tensor]:
        """The slice's rows, one seeded block at a time (the first and last cut to the
        slice): a whole shard is never generated twice over in memory."""
        for b in range(self.start // self.block, -(-self.stop // self.block)):
            lo, hi = max(b * self.block, self.start), min((b + 1) * self.block, self.stop)
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + b)
            rows = torch.randn((self.block, self.dim), generator=gen)
            yield rows[lo - b * self.block : hi - b * self.block]

    def embeddings(self, net: Net | None, local: np.ndarray | None) -> torch.Tensor:
        out = torch.empty((self.stop - self.start, self.dim))
        first = 0
        for rows in self._blocks():
            out[first : first + len(rows)] = rows
            first += len(rows)
        return out if local is None else out[torch.as_tensor(local)]

    def scores(self, net: Net | None, score: Score, local: np.ndarray | None) -> torch.Tensor:
        head = torch.randn((self.dim, self.n_classes),
                           generator=torch.Generator().manual_seed(self.seed))
        if local is not None:
            return score(torch.softmax(self.embeddings(net, local) @ head, dim=1))
        # Block by block: the scores of a whole shard without its embeddings at once.
        return torch.cat([score(torch.softmax(rows @ head, dim=1)) for rows in self._blocks()])


def _needs(net: Net | None) -> Net:
    if net is None:
        raise DeepALError("this shard has no network: build its worker with one")
    return net


class ShardWorker:
    """One shard: a source of points, a network (a copy), and the selection state.

    Parameters
    ----------
    source:
        The shard's rows: a :class:`PoolSlice` or a :class:`SyntheticSlice`.
    net:
        The network the driver uses (copied here; its weights follow with
        :meth:`set_weights`), or ``None`` for a synthetic source.

    Examples
    --------
    >>> worker = ShardWorker(SyntheticSlice(0, 100, dim=4))
    >>> worker.call("embed", np.arange(100), np.zeros(100, dtype=bool), 0)
    100
    >>> worker.call("counts")
    (100, 100)
    """

    #: Methods of the worker itself; any other name is a method of its EmbeddingShard.
    own = frozenset({"set_weights", "embed", "top_scores", "pid", "node", "peak_mb"})

    def __init__(self, source: PoolSlice | SyntheticSlice, net: Net | None = None) -> None:
        self.source = source
        self.net = copy.deepcopy(net)
        self.shard: EmbeddingShard | None = None

    def call(self, method: str, *args: Any) -> Any:
        """Run ``method(*args)``: the worker's own or its shard's."""
        if method in self.own:
            return getattr(self, method)(*args)
        if self.shard is None:
            raise DeepALError(f"{method}: this shard has no embeddings yet (call embed first)")
        return getattr(self.shard, method)(*args)

    def pid(self) -> int:
        """This worker's process id."""
        return os.getpid()

    def peak_mb(self) -> float:
        """This worker's peak resident memory so far, in MB (Linux's ``ru_maxrss``)."""
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def node(self) -> str:
        """The Ray node this worker runs on (``"local"`` outside Ray)."""
        try:
            import ray
        except ImportError:
            return "local"
        return str(ray.get_runtime_context().get_node_id()) if ray.is_initialized() else "local"

    def set_weights(self, state: dict[str, Any]) -> None:
        """Load the driver's network weights (:meth:`deepal.Net.state_dict`)."""
        _needs(self.net).load_state_dict(state)

    def embed(self, local: np.ndarray | None, labeled: np.ndarray, offset: int,
              chunk_size: int = DEFAULT_CHUNK_SIZE) -> int:
        """Embed rows ``local`` of the slice (``None``: all) as global positions
        ``offset...`` (``labeled`` flags which are centres from the start); returns how
        many."""
        points = self.source.embeddings(self.net, _rows(local))
        self.shard = EmbeddingShard(points, labeled, offset, chunk_size)
        return len(points)

    def top_scores(self, local: np.ndarray | None, score: Score | None, n: int,
                   offset: int) -> ShardTop:
        """This shard's best ``n`` scores of rows ``local`` (``None``: all; ``score``
        defaults to the margin), at global positions ``offset...``."""
        scores = self.source.scores(self.net, score or margin, _rows(local))
        return shard_top_n(scores, n, offset)


def _rows(local: np.ndarray | None) -> np.ndarray | None:
    return None if local is None else np.asarray(local, dtype=np.int64)
