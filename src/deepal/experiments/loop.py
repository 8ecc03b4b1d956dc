"""The pool-based active learning loop of the DeepAL paper, instrumented."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from deepal.nets.posterior import ConsistentMCDropoutPosterior
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
    test_loss: float | None = None  # mean cross-entropy on the test set

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_loop(
    strategy: Strategy,
    n_query: int | Sequence[int],
    n_round: int,
    on_round: Callable[[RoundResult], None] | None = None,
    resume_after: int | None = None,
    train: Callable[[], None] | None = None,
    test_mc_samples: int | None = None,
) -> list[RoundResult]:
    """Train on the current labels, then ``n_round`` times: query ``n_query`` examples,
    label them, retrain; test after each training.

    Round 0 trains on the initial labeled set (skipped, with no accuracy, when it is empty).
    ``on_round`` is called with each round's result as soon as it is known.

    Parameters
    ----------
    n_query:
        Examples per query, or one size per round (e.g. a smaller last round, so a label
        budget that is not a multiple of the query size is met exactly).
    resume_after:
        Resume after this round (0 included): the strategy's labels, trained network and
        random states must be those at the end of that round; rounds
        ``resume_after + 1 .. n_round`` run. ``None`` starts with round 0.
    train:
        How to train at each round; default ``strategy.train()``.
    test_mc_samples:
        Test the mean of this many MC-dropout networks, each one mask for the whole test set
        (Kirsch et al., 2019), instead of the network with dropout off (``None``, the
        default). The test draws nothing from the run's random streams.

    Returns
    -------
    list[RoundResult]
        The rounds run by this call.
    """
    data = strategy.dataset
    sizes = [n_query] * n_round if isinstance(n_query, (int, np.integer)) else list(n_query)
    if len(sizes) != n_round:
        raise ValueError(f"got {len(sizes)} query sizes for {n_round} rounds")
    train = strategy.train if train is None else train
    results: list[RoundResult] = []

    def finish(rnd: int, query_seconds: float, queried: np.ndarray) -> None:
        train_seconds, accuracy, loss = 0.0, None, None
        if data.n_labeled > 0:
            start = time.perf_counter()
            train()
            train_seconds = time.perf_counter() - start
            if data.n_test:
                accuracy, loss = _test(strategy, test_mc_samples)
        result = RoundResult(
            rnd, data.n_labeled, accuracy, train_seconds, query_seconds, queried.tolist(), loss
        )
        results.append(result)
        if on_round is not None:
            on_round(result)

    if resume_after is None:
        finish(0, 0.0, np.empty(0, dtype=np.int64))
    for rnd in range((resume_after or 0) + 1, n_round + 1):
        start = time.perf_counter()
        queried = strategy.query(int(sizes[rnd - 1]))
        query_seconds = time.perf_counter() - start
        strategy.update(queried)
        finish(rnd, query_seconds, queried)
    return results


def _test(strategy: Strategy, mc_samples: int | None = None) -> tuple[float, float]:
    """Test accuracy and mean cross-entropy of the strategy's network, or of the mean of
    ``mc_samples`` networks, each with one dropout mask for the whole test set (consistent MC
    dropout, as Kirsch et al.'s code tests)."""
    data = strategy.dataset
    test = data.get_test_data()
    if mc_samples is None:
        probs = strategy.predict_prob(test)
    else:
        # The masks' seed comes from torch's global generator, which is then put back: the
        # test is reproducible and changes nothing the run draws afterwards.
        with torch.random.fork_rng(devices=[]):
            seed = int(torch.randint(2**62, ()).item())
        probs = ConsistentMCDropoutPosterior(strategy.net, mc_samples, seed=seed).mean(test)
    accuracy = data.cal_test_acc(probs.argmax(dim=1))
    labels = torch.as_tensor(data.Y_test, dtype=torch.long)
    picked = probs[torch.arange(len(labels)), labels]
    loss = float(-torch.log(picked.clamp_min(1e-12)).mean())
    return accuracy, loss
