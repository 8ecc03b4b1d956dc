"""The pool-based active learning loop of the DeepAL paper, instrumented."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from deepal.strategies.base import Strategy


@dataclass
class RoundResult:
    """What happened in one round. Round 0 is the initial labeled set (no query)."""

    round: int
    n_labeled: int
    test_accuracy: float | None
    train_seconds: float
    query_seconds: float
    queried: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_loop(
    strategy: Strategy,
    n_query: int,
    n_round: int,
    on_round: Callable[[RoundResult], None] | None = None,
) -> list[RoundResult]:
    """Train on the current labels, then ``n_round`` times: query ``n_query`` examples,
    label them, retrain; test after each training.

    Round 0 trains on the initial labeled set (skipped, with no accuracy, when it is empty).
    ``on_round`` is called with each round's result as soon as it is known.
    """
    data = strategy.dataset
    results: list[RoundResult] = []

    def finish(rnd: int, query_seconds: float, queried: np.ndarray) -> None:
        train_seconds, accuracy = 0.0, None
        if data.n_labeled > 0:
            start = time.perf_counter()
            strategy.train()
            train_seconds = time.perf_counter() - start
            if data.n_test:
                accuracy = data.cal_test_acc(strategy.predict(data.get_test_data()))
        result = RoundResult(
            rnd, data.n_labeled, accuracy, train_seconds, query_seconds, queried.tolist()
        )
        results.append(result)
        if on_round is not None:
            on_round(result)

    finish(0, 0.0, np.empty(0, dtype=np.int64))
    for rnd in range(1, n_round + 1):
        start = time.perf_counter()
        queried = strategy.query(n_query)
        query_seconds = time.perf_counter() - start
        strategy.update(queried)
        finish(rnd, query_seconds, queried)
    return results
