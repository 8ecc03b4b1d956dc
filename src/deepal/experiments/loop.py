"""The pool-based active learning loop of the DeepAL paper, instrumented."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from deepal.config.arguments import integer, optional_integer
from deepal.errors import DeepALError, PoolExhaustedError
from deepal.nets.posterior import ConsistentMCDropoutPosterior
from deepal.strategies.base import Strategy


@dataclass
class RoundResult:
    """What happened in one round. Round 0 is the initial labeled set (no query).

    Parameters
    ----------
    round:
        The round: 0 for the initial labeled set.
    n_labeled:
        Labels after the round's query.
    test_accuracy, test_loss:
        On the test set, ``None`` without one.
    train_seconds, query_seconds:
        Wall time of the round's training and query.
    queried:
        The pool indices queried this round.

    Examples
    --------
    >>> RoundResult(round=1, n_labeled=15, test_accuracy=0.9, train_seconds=1.0,
    ...             query_seconds=0.1, queried=[3, 7]).to_dict()["n_labeled"]
    15
    """

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
    query: Callable[[int], np.ndarray] | None = None,
) -> list[RoundResult]:
    """Train on the current labels, then ``n_round`` times: query ``n_query`` examples,
    label them, retrain; test after each training.

    Round 0 trains on the initial labeled set (skipped, with no accuracy, when it is empty).
    ``on_round`` is called with each round's result as soon as it is known.

    Parameters
    ----------
    strategy:
        The strategy, with its data set and network.
    n_query:
        Examples per query (an integer >= 1), or one size per round (e.g. a smaller last
        round, so a label budget that is not a multiple of the query size is met exactly).
    n_round:
        How many rounds of queries, an integer >= 0.
    on_round:
        Called with each round's result as soon as it is known.
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
    query:
        How to query ``n`` examples; default ``strategy.query`` (a sharded query gives the
        same picks: :func:`deepal.sharded.configured.query_function`).

    Returns
    -------
    list[RoundResult]
        The rounds run by this call.

    Raises
    ------
    ConfigError
        If a count is not an integer in its range (``n_query=0`` included: a round must
        label something), before anything is trained.
    PoolExhaustedError
        If the rounds to run would query more examples than the pool has unlabeled.

    Examples
    --------
    >>> import numpy as np
    >>> import deepal
    >>> from deepal.nets import MLP
    >>> X = np.random.default_rng(0).normal(size=(40, 4)).astype("float32")
    >>> data = deepal.Data(X, np.arange(40) % 2)
    >>> first = data.initialize_labels(10, random_state=0)
    >>> net = deepal.Net(lambda: MLP(n_features=4, n_classes=2), {"n_epoch": 2}, device="cpu")
    >>> results = run_loop(deepal.RandomSampling(data, net, random_state=0), n_query=5, n_round=2)
    >>> [result.n_labeled for result in results]
    [10, 15, 20]
    """
    data = strategy.dataset
    sizes = query_sizes(n_query, n_round, resume_after, data.n_unlabeled)
    test_mc_samples = optional_integer("test_mc_samples", test_mc_samples, minimum=1)
    train = strategy.train if train is None else train
    query = strategy.query if query is None else query
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
        queried = query(sizes[rnd - 1])
        query_seconds = time.perf_counter() - start
        strategy.update(queried)
        finish(rnd, query_seconds, queried)
    return results


def query_sizes(
    n_query: object, n_round: object, resume_after: object, n_unlabeled: int
) -> list[int]:
    """The query size of each round, checked: ``n_query`` is one integer >= 1 or one per
    round, and the rounds after ``resume_after`` query no more than ``n_unlabeled``.

    Examples
    --------
    >>> query_sizes(10, 3, None, 100)
    [10, 10, 10]
    >>> query_sizes([10, 5], 2, 1, 5)
    [10, 5]
    >>> query_sizes(0, 3, None, 100)
    Traceback (most recent call last):
    ...
    deepal.config.base.ConfigError: n_query must be an integer >= 1, got 0
    """
    n_round = integer("n_round", n_round)
    if isinstance(n_query, (Sequence, np.ndarray)) and not isinstance(n_query, str):
        sizes = [integer(f"n_query[{i}]", size, minimum=1) for i, size in enumerate(n_query)]
        if len(sizes) != n_round:
            raise DeepALError(f"got {len(sizes)} query sizes for {n_round} rounds: give one "
                              "size per round, or one integer for all")
    else:
        sizes = [integer("n_query", n_query, minimum=1)] * n_round
    done = optional_integer("resume_after", resume_after) or 0
    if done > n_round:
        raise DeepALError(f"resume_after={done} is past the last round ({n_round})")
    needed = sum(sizes[done:])
    if needed > n_unlabeled:
        raise PoolExhaustedError(
            f"{n_round - done} rounds would query {needed} examples, but only {n_unlabeled} "
            "are unlabeled: lower n_query or n_round"
        )
    return sizes


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
