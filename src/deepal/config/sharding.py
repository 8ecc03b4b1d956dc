"""Where a query runs: the strategy's own query in one process (the default), or the pool
split into shards, held by workers in this process or by Ray actors.

These settings say only where the query's work is done, not what it picks: a sharded query
gives the strategy's own picks (see :mod:`deepal.sharded`). They are the ``[query]`` table of
an experiment and the ``--query-backend``, ``--shards`` and ``--query-address`` options of
``deepal query`` and ``deepal experiment`` (whose ``--backend`` says where whole runs go).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, model_validator

from deepal.config.base import Settings
from deepal.config.fields import PositiveInt

QueryBackend = Literal["local", "ray"]
#: Where a sharded query's shards live: workers in this process, or Ray actors.
QUERY_BACKENDS: tuple[str, ...] = get_args(QueryBackend)

# HOST:PORT or ray://HOST:PORT (Ray Client); "auto" is the cluster Ray finds on this machine.
_ADDRESS = re.compile(
    r"^(ray://)?(?P<host>[A-Za-z0-9_.\-]+|\[[0-9A-Fa-f:.]+\]):(?P<port>[0-9]{1,5})$")


def _address(value: str) -> str:
    match = _ADDRESS.match(value)
    if value != "auto" and not (match and 0 < int(match["port"]) < 65536):
        raise ValueError("expected auto, HOST:PORT or ray://HOST:PORT (a port from 1 to 65535)")
    return value


#: A Ray cluster's address: ``auto``, ``HOST:PORT`` or ``ray://HOST:PORT``.
RayAddress = Annotated[str, AfterValidator(_address)]


class QuerySettings(Settings):
    """Where each query runs.

    Parameters
    ----------
    backend:
        ``None`` (the default): the strategy's own query, in this process. ``"local"``: the
        pool split into ``shards`` workers in this process (the same picks; a check of the
        sharded path). ``"ray"``: ``shards`` Ray actors, each scoring or embedding its block
        of the pool with a copy of the network.
    shards:
        Number of shards; only with a backend (``None``: 2, see :attr:`n_shards`).
    address:
        With ``backend = "ray"``: the cluster (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``);
        ``None`` starts a Ray on this machine for the query.

    Examples
    --------
    >>> from deepal.config import validated
    >>> validated(QuerySettings, {"backend": "ray", "shards": 4}).n_shards
    4
    >>> from deepal.config import ConfigError
    >>> try:
    ...     validated(QuerySettings, {"shards": 4}, "[query]")
    ... except ConfigError as error:
    ...     print(error)
    [query] shards needs a query backend: backend = "local" or "ray" (--query-backend)
    """

    backend: QueryBackend | None = None
    shards: PositiveInt | None = None
    address: RayAddress | None = None

    @model_validator(mode="after")
    def _consistent(self) -> QuerySettings:
        if self.backend is None and self.shards is not None:
            raise ValueError('shards needs a query backend: backend = "local" or "ray" '
                             "(--query-backend)")
        if self.address is not None and self.backend != "ray":
            raise ValueError('address names a Ray cluster: it needs backend = "ray" '
                             "(--query-backend ray)")
        return self

    @property
    def n_shards(self) -> int:
        """Number of shards: :attr:`shards`, or 2 when not given."""
        return 2 if self.shards is None else self.shards

    @property
    def sharded(self) -> bool:
        """Whether queries run over shards."""
        return self.backend is not None
