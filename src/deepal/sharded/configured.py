"""Queries where :class:`~deepal.config.sharding.QuerySettings` say: the check an entry point
makes before it writes anything, and the query function projects and experiments call.

With no backend the query is the strategy's own; with one, a :class:`ShardedPool` is opened
for the queries' whole span (its workers keep their copies of the network between queries)
and every query goes through it: the same picks, with the pool's work on the shards where
that is exact and on the driver, over ``max_candidates``, where it is not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

from deepal.config.sharding import QuerySettings
from deepal.sharded.query import ShardedPool
from deepal.sharded.ray_shards import reach
from deepal.strategies.base import Strategy

#: One query: the number of examples to pick in, their pool indices out.
Query = Callable[[int], np.ndarray]


def check_query_settings(settings: QuerySettings) -> None:
    """Refuse settings that cannot run here, before anything is written: the Ray backend
    without Ray installed, or a cluster address that does not answer.

    Parameters
    ----------
    settings:
        The checked settings.

    Raises
    ------
    DeepALError
        Naming the problem and the fix.

    Examples
    --------
    >>> check_query_settings(QuerySettings(backend="local", shards=4))
    """
    if settings.backend == "ray":
        reach(settings.address, resolve=True)


@contextmanager
def query_function(settings: QuerySettings, strategy: Strategy) -> Iterator[Query]:
    """The query to call for ``strategy`` while the context lasts.

    Parameters
    ----------
    settings:
        Where the queries run.
    strategy:
        The strategy whose queries these are (its data set and net are the pool's).

    Yields
    ------
    Callable[[int], numpy.ndarray]
        ``query(n)``: the picks of ``strategy.query(n)``.

    Examples
    --------
    >>> with query_function(QuerySettings(backend="local"), strategy) as query:  # doctest: +SKIP
    ...     picked = query(10)
    """
    if not settings.sharded:
        yield strategy.query
        return
    with ShardedPool(strategy.dataset, strategy.net, settings.n_shards, str(settings.backend),
                     settings.address) as pool:

        def query(n: int) -> np.ndarray:
            return pool.query(strategy, n)

        yield query
