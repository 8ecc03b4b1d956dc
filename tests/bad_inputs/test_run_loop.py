"""run_loop refuses bad counts before it trains, queries or reports anything."""

from __future__ import annotations

from functools import partial

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from refusals import fuzz, refused

from deepal import Data, Net, RandomSampling, run_loop
from deepal.config import ConfigError
from deepal.errors import PoolExhaustedError
from deepal.nets import MLP

N, N_TEST = 30, 6


def make_strategy() -> RandomSampling:
    rng = np.random.default_rng(0)
    data = Data(rng.normal(size=(N, 4)).astype(np.float32), np.arange(N) % 3,
                rng.normal(size=(N_TEST, 4)).astype(np.float32), np.arange(N_TEST) % 3)
    data.initialize_labels(3, random_state=0)
    net = Net(partial(MLP, n_features=4, n_classes=3), {"n_epoch": 1}, device="cpu")
    return RandomSampling(data, net, random_state=0)


class Untouched:
    """The strategy's labels, its network and the reports, to compare after a refusal."""

    def __init__(self, strategy: RandomSampling) -> None:
        self.strategy = strategy
        self.labeled = strategy.dataset.labeled_idxs.copy()
        self.reports: list[object] = []

    def check(self) -> None:
        assert (self.strategy.dataset.labeled_idxs == self.labeled).all()
        assert self.strategy.net.clf is None and self.reports == []


STRATEGY = make_strategy()

bad_counts = st.one_of(
    st.integers(max_value=0),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([True, False, "2", None, np.float32(2.0)]),
)


def loop_refuses(kind: str, **arguments: object) -> str:
    """run_loop must refuse ``arguments`` in one line, having trained, queried and reported
    nothing."""
    watch = Untouched(STRATEGY)
    with refused("run_loop", kind) as error:
        run_loop(STRATEGY, on_round=watch.reports.append, **arguments)  # type: ignore[arg-type]
    watch.check()
    return str(error.value)


@fuzz(40)
@given(n_query=bad_counts)
def test_a_bad_query_size_is_refused_before_training(n_query):
    message = loop_refuses("bad n_query", n_query=n_query, n_round=2)
    assert message.startswith("n_query must be an integer >= 1")


@fuzz(20)
@given(n_round=st.one_of(st.integers(max_value=-1), st.floats(), st.sampled_from([True, "1"])))
def test_a_bad_number_of_rounds_is_refused_before_training(n_round):
    message = loop_refuses("bad n_round", n_query=2, n_round=n_round)
    assert message.startswith("n_round must be an integer >= 0")


@fuzz(20)
@given(sizes=st.lists(st.integers(1, 3), min_size=1, max_size=4), bad=bad_counts,
       position=st.integers(0, 3))
def test_a_bad_size_among_per_round_sizes_is_named(sizes, bad, position):
    position = min(position, len(sizes) - 1)
    sizes[position] = bad
    message = loop_refuses("bad n_query", n_query=sizes, n_round=len(sizes))
    assert message.startswith(f"n_query[{position}] must be an integer >= 1")


def test_n_query_zero_is_a_config_error_not_a_retraining_on_the_same_labels():
    with refused("run_loop", "bad n_query", ConfigError,
                 match="n_query must be an integer >= 1, got 0"):
        run_loop(make_strategy(), 0, 3)


def test_more_queries_than_unlabeled_examples_are_refused_before_training():
    unlabeled = N - 3
    message = loop_refuses("more than the pool", n_query=10, n_round=3)
    assert message == (f"3 rounds would query 30 examples, but only {unlabeled} are unlabeled: "
                       "lower n_query or n_round")
    with refused("run_loop", "more than the pool", PoolExhaustedError):
        run_loop(STRATEGY, [unlabeled, 1], 2)
    assert "4 query sizes for 3 rounds" in loop_refuses("bad n_query",
                                                        n_query=[1, 1, 1, 1], n_round=3)


def test_bad_resume_round_and_mc_samples_are_refused():
    assert loop_refuses("bad resume_after", n_query=2, n_round=2,
                        resume_after=3).startswith("resume_after=3 is past")
    assert loop_refuses("bad resume_after", n_query=2, n_round=2,
                        resume_after=-1).startswith("resume_after must be")
    assert loop_refuses("bad test_mc_samples", n_query=2, n_round=2,
                        test_mc_samples=0).startswith("test_mc_samples must")


def test_good_counts_still_run_every_round():
    strategy = make_strategy()
    rounds = run_loop(strategy, np.array([2, 1]), np.int64(2))
    assert [r.n_labeled for r in rounds] == [3, 5, 6]
    assert run_loop(make_strategy(), 2, 0)[0].n_labeled == 3
