"""Active learning by learning (Hsu & Lin, 2015): a bandit over query strategies."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from deepal.config.arguments import number
from deepal.config.base import ConfigError
from deepal.data.pool import Data
from deepal.errors import DeepALError
from deepal.nets.net import Net
from deepal.scores.bandit import exp4p_probabilities, exp4p_update, importance_weighted_accuracy
from deepal.state import StateError
from deepal.strategies.base import Strategy
from deepal.strategies.registry import get_strategy

DEFAULT_STRATEGIES = ("RandomSampling", "MarginSampling", "KCenterGreedy")


class ActiveLearningByLearning(Strategy):
    """Learn, while querying, which of several strategies helps the classifier most.

    Each held strategy is an expert of the bandit EXP4.P; its advice at a query is the
    uniform distribution over the ``n`` examples it would pick. The query draws ``n``
    examples from EXP4.P's mixture of the advice (weighted by the experts' weights, plus a
    least probability ``p_min`` for every candidate). At the next query the bandit is paid
    the reward of the paper: the importance-weighted accuracy of the retrained classifier on
    every example ALBL has queried, each weighted by the inverse of the probability it had
    of being drawn (an unbiased estimate of the accuracy on the pool that needs no
    validation set). Strategies whose advice earned rewards gain weight.

    Batch mode: each of the ``n`` picks counts as one EXP4.P round paid the batch's reward,
    and a pick's inclusion probability is taken as ``min(1, n q_j)``; with ``n = 1`` both
    are exactly the paper's. EXP4.P learns at a rate of about ``p_min``, i.e. ``1/K``: on a
    large pool the weights move slowly (``max_candidates`` shrinks ``K``).

    Parameters
    ----------
    dataset, net, random_state, max_candidates:
        As for :class:`~deepal.strategies.base.Strategy` (the last two by keyword). The held
        strategies pick among the same candidates.
    strategies:
        Names of strategies (as for :func:`~deepal.get_strategy`) or strategy instances on
        the same ``dataset`` and ``net``; default random, margin and k-center greedy.
    p_min:
        EXP4.P's least probability of a candidate; ``None``:
        ``sqrt(ln M / (K T))`` for ``M`` strategies, ``K`` candidates and horizon ``T``,
        capped at ``1 / (2K)`` so that at least half of the draw follows the strategies.
    horizon:
        EXP4.P's horizon ``T`` (the number of examples to be queried); ``None``: the number
        of unlabeled examples at creation.
    delta:
        EXP4.P's confidence parameter.

    Attributes
    ----------
    weights:
        The experts' weights, in the order of ``strategies``.
    last_reward:
        The reward paid at the last query (``None`` before the second query).

    Examples
    --------
    >>> import numpy as np
    >>> import deepal
    >>> from deepal.nets import MLP
    >>> X = np.random.default_rng(0).normal(size=(60, 4)).astype("float32")
    >>> data = deepal.Data(X, np.arange(60) % 3)
    >>> first = data.initialize_labels(12, random_state=0)
    >>> net = deepal.Net(lambda: MLP(n_features=4, n_classes=3), {"n_epoch": 2}, device="cpu")
    >>> strategy = deepal.ActiveLearningByLearning(data, net, random_state=0)
    >>> strategy.train()
    >>> picked = strategy.query(5)
    >>> len(set(picked.tolist())), bool(data.labeled_idxs[picked].any())
    (5, False)
    """

    state_attrs = (*Strategy.state_attrs, "weights", "last_reward", "_pending", "_queried")

    def __init__(
        self,
        dataset: Data,
        net: Net,
        strategies: Sequence[str | Strategy] = DEFAULT_STRATEGIES,
        p_min: float | None = None,
        horizon: int | None = None,
        delta: float = 0.1,
        **kwargs: Any,
    ) -> None:
        super().__init__(dataset, net, **kwargs)
        if len(strategies) == 0:
            raise DeepALError("ActiveLearningByLearning needs at least one strategy")
        self.strategies = [self._held(s) for s in strategies]
        self.needs_model = any(s.needs_model for s in self.strategies)  # type: ignore[misc]
        self.p_min = p_min
        self.horizon = horizon if horizon is not None else max(dataset.n_unlabeled, 1)
        self.delta = number("delta", delta, above=0)
        if self.delta >= 1:
            raise ConfigError(f"delta is a probability of failure: it must be below 1, got {delta}")
        self.weights = np.ones(len(self.strategies))
        self.last_reward: float | None = None
        self._pending: tuple[np.ndarray, np.ndarray, np.ndarray, float] | None = None
        self._queried: list[tuple[np.ndarray, np.ndarray, int]] = []

    def _held(self, strategy: str | Strategy) -> Strategy:
        if isinstance(strategy, Strategy):
            if strategy.dataset is not self.dataset or strategy.net is not self.net:
                raise DeepALError("every held strategy must use the same dataset and net")
            return strategy
        seed = int(self.rng.integers(2**31 - 1))
        return get_strategy(strategy)(self.dataset, self.net, random_state=seed)

    def _learned_state(self) -> dict[str, Any]:
        # The held strategies share this strategy's net, saved once with it.
        held = [{"strategy": type(s).__name__, **s._learned_state()} for s in self.strategies]
        return {**super()._learned_state(), "strategies": held}

    def _load_learned_state(self, state: Mapping[str, Any]) -> None:
        super()._load_learned_state(state)
        held = state["strategies"]
        if len(held) != len(self.strategies):
            raise StateError(
                f"the state holds {len(held)} strategies and this ActiveLearningByLearning "
                f"{len(self.strategies)}: build it with the same strategies"
            )
        for strategy, saved in zip(self.strategies, held, strict=True):
            strategy._check_state(saved)
            strategy._load_learned_state(saved)

    def p_min_for(self, n_arms: int) -> float:
        """EXP4.P's least arm probability for ``n_arms`` candidates."""
        if self.p_min is not None:
            if not 0 <= self.p_min <= 1 / n_arms:
                raise DeepALError(
                    f"p_min={self.p_min} must be in [0, 1/K] = [0, {1 / n_arms:.3g}] for the "
                    f"{n_arms} candidates: lower it or leave it to the default"
                )
            return self.p_min
        value = math.sqrt(math.log(len(self.strategies)) / (n_arms * self.horizon))
        return min(value, 0.5 / n_arms)

    def reward(self) -> float:
        """Importance-weighted accuracy of the current classifier on the examples queried
        so far (those labeled since; the labels are the pool's, never the unlabeled ones)."""
        correct, weights, arms = [], [], []
        for idxs, inverse_probs, n_arms in self._queried:
            labeled = self.dataset.labeled_idxs[idxs]
            preds = self.predict(self.dataset.get_inputs(idxs[labeled])).numpy()
            correct.append(preds == self.dataset.Y_train[idxs[labeled]])
            weights.append(inverse_probs[labeled])
            arms.append(n_arms)
        return importance_weighted_accuracy(correct, weights, arms)

    def query(self, n: int) -> np.ndarray:
        if self._pending is not None:
            advice, q, picked, p_min = self._pending
            self.last_reward = self.reward()
            self.weights = exp4p_update(
                self.weights, advice, q, picked, self.last_reward, p_min, self.horizon, self.delta
            )
        candidates = self.candidate_idxs()
        n_arms = len(candidates)
        advice = np.zeros((len(self.strategies), n_arms))
        with _picking_from(self.strategies, candidates):
            for k, strategy in enumerate(self.strategies):
                advice[k, np.searchsorted(candidates, strategy.query(n))] = 1.0 / n
        p_min = self.p_min_for(n_arms)
        q = exp4p_probabilities(self.weights, advice, p_min)
        picked = self.rng.choice(n_arms, size=n, replace=False, p=q)
        self.last_scores = q
        self._pending = (advice, q, picked, p_min)
        self._queried.append((candidates[picked], 1.0 / np.minimum(1.0, n * q[picked]), n_arms))
        return candidates[picked]


@contextmanager
def _picking_from(strategies: list[Strategy], candidates: np.ndarray) -> Iterator[None]:
    """Make the held strategies pick among ``candidates`` (the arms of this query)."""
    for strategy in strategies:
        strategy.candidate_idxs = lambda: candidates  # type: ignore[method-assign]
    try:
        yield
    finally:
        for strategy in strategies:
            del strategy.candidate_idxs
