"""Queries over a pool split into shards: per-shard work, exact merges on the driver.

:func:`~deepal.sharded.query.sharded_query` runs a strategy's query with its pool split
into shards, in this process or on Ray actors (``backend="ray"``); the merges in
:mod:`~deepal.sharded.merge`, :mod:`~deepal.sharded.kcenter` and
:mod:`~deepal.sharded.kmeans` give the same picks as the single-process selection.
"""

from deepal.sharded.query import ShardedPool, sharded_query
from deepal.sharded.ray_shards import ShardLostError

__all__ = ["ShardLostError", "ShardedPool", "sharded_query"]
