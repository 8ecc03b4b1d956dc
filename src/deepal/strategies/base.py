"""The :class:`Strategy` base class: the pool-based loop's ``query`` / ``update`` / ``train``."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np
import torch
from torch.utils.data import Dataset

from deepal.config.arguments import optional_integer
from deepal.data.pool import Data
from deepal.errors import DeepALError, PoolExhaustedError
from deepal.nets.net import Net
from deepal.nets.semi_supervised import UnlabeledPool
from deepal.seeding import generator
from deepal.state import (
    Stateful,
    check_keys,
    check_kind,
    from_state,
    generator_state,
    set_generator_state,
    to_state,
)


class Strategy:
    """Base class of the query strategies (DeepAL's ``Strategy``).

    A strategy picks which unlabeled examples to label next. Subclasses implement
    :meth:`query`; deepal checks every call: ``n`` is validated before it runs, and the result
    must be ``n`` distinct indices of currently unlabeled pool examples.

    Parameters
    ----------
    dataset:
        The pool.
    net:
        The classifier.
    random_state:
        Seed or generator for the strategy's own randomness. ``None`` draws a seed from
        numpy's global generator, so seeding numpy once makes a whole run reproducible.
    max_candidates:
        Score only a random subset of this many unlabeled examples at each query (as the
        MC-dropout literature does on large pools); ``None`` scores the whole unlabeled pool.
    embeddings_file:
        Where embedding-based strategies keep the pool's embeddings: a file path for a
        memory-mapped float32 file (for pools whose embeddings do not fit in memory; it is
        overwritten at each query), or ``None`` to keep them in memory.

    Attributes
    ----------
    needs_model:
        Whether :meth:`query` needs a trained network (``False`` only for strategies such as
        random sampling that can pick the very first batch).
    last_scores:
        The scores of the unlabeled examples at the last query, where the strategy has any,
        in the order of the candidates of that query (for inspection).

    Examples
    --------
    A custom strategy is a subclass with a ``query`` method::

        class SmallestMaxProb(Strategy):
            def query(self, n):
                idxs, data = self.candidates()
                confidence = self.predict_prob(data).max(dim=1).values
                return idxs[confidence.argsort()[:n].numpy()]
    """

    needs_model: ClassVar[bool] = True
    #: Attributes the strategy keeps between queries, saved as they are by
    #: :meth:`state_dict` (numpy arrays as tensors); subclasses extend the tuple.
    state_attrs: ClassVar[tuple[str, ...]] = ("last_scores",)

    def __init__(
        self,
        dataset: Data,
        net: Net,
        random_state: int | np.random.Generator | None = None,
        max_candidates: int | None = None,
        embeddings_file: str | os.PathLike[str] | None = None,
    ) -> None:
        self.dataset = dataset
        self.net = net
        net.n_classes = dataset.n_classes  # the net checks its output against it
        if hasattr(net, "unlabeled_inputs"):  # semi-supervised training reads the pool's inputs
            net.unlabeled_inputs = UnlabeledPool(dataset)
        self.rng = generator(random_state)
        self.max_candidates = optional_integer("max_candidates", max_candidates, minimum=1)
        self.embeddings_file = embeddings_file
        self.last_scores: np.ndarray | None = None

    def candidate_idxs(self) -> np.ndarray:
        """Sorted pool indices of the unlabeled examples this query may pick from: all of
        them, or a fresh random subset of ``max_candidates``."""
        idxs = np.flatnonzero(~self.dataset.labeled_idxs)
        if self.max_candidates is not None and self.max_candidates < len(idxs):
            idxs = np.sort(self.rng.choice(idxs, size=self.max_candidates, replace=False))
        return idxs

    def candidates(self) -> tuple[np.ndarray, Dataset]:
        """:meth:`candidate_idxs` and a dataset of their inputs, without labels."""
        idxs = self.candidate_idxs()
        return idxs, self.dataset.get_inputs(idxs)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        query = cls.__dict__.get("query")
        if query is not None and not getattr(query, "_deepal_checked", False):
            cls.query = _checked_query(query)  # type: ignore[method-assign]

    def query(self, n: int) -> np.ndarray:
        """Return ``n`` distinct indices of unlabeled pool examples to label next."""
        raise NotImplementedError(f"{type(self).__name__} must implement query(n)")

    def update(self, query_idxs: Any, labels: Any | None = None, neg: bool = False) -> None:
        """Label the examples ``query_idxs``.

        On a simulated pool their known labels are revealed; on a real pool pass ``labels``
        (one class index per example). ``neg=True`` returns them to the unlabeled pool."""
        if neg:
            self.dataset.unlabel(query_idxs)
        else:
            self.dataset.label(query_idxs, labels)

    def train(self) -> None:
        """Retrain the network on the labeled pool."""
        _, labeled_data = self.dataset.get_labeled_data()
        self.net.train(labeled_data)

    # -- saved state -------------------------------------------------------------------------

    def state_parts(self) -> dict[str, Stateful]:
        """The parts besides the net that save their own state (a posterior estimate, a
        training hook...), by the name of their entry; loaded in this order, after the net."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Everything the strategy learned, as tensors and plain values (see
        :mod:`deepal.state`): its class, its net's :meth:`~deepal.Net.state_dict`, its
        parts' states (:meth:`state_parts`), its :attr:`state_attrs` and its random
        generator. Neither the data set nor the labeled set: whoever saves the state saves
        ``dataset.labeled_idxs`` too, and restores it before :meth:`load_state_dict`.

        Examples
        --------
        >>> state = strategy.state_dict()                         # doctest: +SKIP
        >>> torch.save(state, "strategy.pt")                      # doctest: +SKIP
        >>> fresh = type(strategy)(dataset, net, **options)       # doctest: +SKIP
        >>> fresh.load_state_dict(torch.load("strategy.pt", weights_only=True))  # doctest: +SKIP
        """
        return to_state({
            "strategy": type(self).__name__, "net": self.net.state_dict(),
            **self._learned_state(),
        })

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` into this strategy, built with the same options on
        the same data set (with its labeled set restored): it then queries, trains and draws
        exactly as the saved strategy would have.

        Raises
        ------
        StateError
            If the state was saved by another class, or its entries do not fit.
        """
        self._check_state(state, "net")
        self.net.load_state_dict(state["net"])
        self._load_learned_state(state)

    def _learned_state(self) -> dict[str, Any]:
        """The state without the class and the net (a strategy held by another shares it)."""
        state = {name: part.state_dict() for name, part in self.state_parts().items()}
        state.update({name: to_state(getattr(self, name), name) for name in self.state_attrs})
        state["rng"] = generator_state(self.rng)
        return state

    def _check_state(self, state: Mapping[str, Any], *shared: str) -> None:
        owner = type(self).__name__
        check_kind(state, "strategy", owner, owner)
        check_keys(state, ["strategy", *shared, *self._learned_state()], owner)

    def _load_learned_state(self, state: Mapping[str, Any]) -> None:
        for name, part in self.state_parts().items():
            part.load_state_dict(state[name])
        for name in self.state_attrs:
            setattr(self, name, from_state(state[name]))
        set_generator_state(self.rng, state["rng"])

    # -- pass-throughs to the net (DeepAL's names) -----------------------------------------

    def predict(self, data: Dataset) -> torch.Tensor:
        return self.net.predict(data)

    def predict_prob(self, data: Dataset) -> torch.Tensor:
        return self.net.predict_prob(data)

    def predict_prob_dropout(
        self, data: Dataset, n_drop: int = 10, seed: int | None = None
    ) -> torch.Tensor:
        return self.net.predict_prob_dropout(data, n_drop=n_drop, seed=seed)

    def predict_prob_dropout_split(self, data: Dataset, n_drop: int = 10) -> torch.Tensor:
        return self.net.predict_prob_dropout_split(data, n_drop=n_drop)

    def get_embeddings(self, data: Dataset) -> torch.Tensor:
        if self.embeddings_file is None:
            return self.net.get_embeddings(data)
        return self.net.get_embeddings(data, memmap=self.embeddings_file)

    def embeddings_for_search(self, data: Dataset) -> torch.Tensor:
        """:meth:`get_embeddings`, moved to the net's device for a distance search there
        (k-center, k-means); memory-mapped embeddings stay on the CPU, since they are kept
        on disk because they do not fit in memory."""
        embeddings = self.get_embeddings(data)
        device = getattr(self.net, "device", None)  # a user's own net need not have one
        if self.embeddings_file is None and device is not None:
            embeddings = embeddings.to(device)
        return embeddings

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.dataset!r})"


def _checked_query(query: Callable[..., Any]) -> Callable[..., np.ndarray]:
    """Wrap a subclass's ``query`` so every call validates ``n`` and the returned indices."""

    @functools.wraps(query)
    def checked(self: Strategy, n: int, *args: Any, **kwargs: Any) -> np.ndarray:
        name = type(self).__name__
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise DeepALError(f"n must be an integer number of examples, got {n!r}")
        n = int(n)
        if n < 0:
            raise DeepALError(f"n must be >= 0, got {n}")
        left = self.dataset.n_unlabeled
        if n > left:
            raise PoolExhaustedError(f"n={n} exceeds the {left} unlabeled examples left")
        if self.max_candidates is not None and n > self.max_candidates:
            raise DeepALError(
                f"n={n} exceeds max_candidates={self.max_candidates}: raise max_candidates"
            )
        if n == 0:
            return np.empty(0, dtype=np.int64)
        if self.needs_model and self.net.clf is None:
            raise DeepALError(
                f"{name} needs a trained network: label some examples and call train() first "
                f"(with deepal run, n_init_labeled > 0), or use RandomSampling"
            )
        picked = np.asarray(query(self, n, *args, **kwargs)).reshape(-1)
        _check_picks(name, picked, n, self.dataset)
        return picked.astype(np.int64)

    checked._deepal_checked = True  # type: ignore[attr-defined]
    return checked


def _check_picks(name: str, picked: np.ndarray, n: int, dataset: Data) -> None:
    """Raise if a strategy broke the query contract (a bug in that strategy)."""
    if picked.size and not np.issubdtype(picked.dtype, np.integer):
        raise DeepALError(f"{name}.query returned {picked.dtype} values, not pool indices")
    if len(picked) != n:
        raise DeepALError(f"{name}.query returned {len(picked)} indices for n={n}")
    if len(np.unique(picked)) != n:
        raise DeepALError(f"{name}.query returned the same index more than once")
    if picked.min() < 0 or picked.max() >= dataset.n_pool:
        raise DeepALError(f"{name}.query returned an index outside the pool")
    if dataset.labeled_idxs[picked].any():
        raise DeepALError(f"{name}.query returned an index that is already labeled")
