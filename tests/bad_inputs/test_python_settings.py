"""The Python API's settings: a ``Net``'s DeepAL params dict and every registered strategy's
keyword options. A bad value is a DeepALError naming the key, raised when the object is made
(before any training), never a numpy or torch error later."""

from __future__ import annotations

import inspect
import math
from functools import partial
from typing import Any

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st
from refusals import fuzz, refused

from deepal import Data, Net
from deepal.nets import MLP
from deepal.strategies.registry import STRATEGIES, get_strategy

GOOD_PARAMS: dict[str, Any] = {"n_epoch": 1, "train_args": {"batch_size": 8},
                               "test_args": {"batch_size": 16}, "optimizer": "Adam",
                               "optimizer_args": {"lr": 0.01}}

text = st.text(max_size=5)
not_a_count = st.one_of(st.integers(max_value=-1), st.floats().filter(lambda f: f != int(f)
                        if math.isfinite(f) else True), text, st.booleans(), st.none())
not_a_number = st.one_of(st.sampled_from([math.nan, math.inf, -math.inf]), text, st.none(),
                         st.lists(st.floats(), max_size=2))

BAD_PARAMS = {
    "n_epoch": not_a_count,
    "train_args": st.one_of(st.fixed_dictionaries({"batch_size": st.one_of(
        st.integers(max_value=0), text, st.floats())}), text, st.integers()),
    "test_args": st.one_of(st.fixed_dictionaries({"batch_size": st.one_of(
        st.integers(max_value=0), text)}), st.lists(st.integers(), max_size=2)),
    "optimizer": st.one_of(st.sampled_from(["adam", "Adagrad", "", "torch.optim:SGD"]),
                           st.integers()),
    "optimizer_args": st.one_of(
        st.fixed_dictionaries({"lr": st.one_of(st.floats(max_value=0), not_a_number)}),
        st.fixed_dictionaries({"weight_decay": st.one_of(st.floats(max_value=-1e-9),
                                                         not_a_number)}),
        st.fixed_dictionaries({"momentum": st.floats()}),
        st.fixed_dictionaries({"betas": st.one_of(st.floats(), st.lists(st.floats(), max_size=1),
                                                  text)}),
        text, st.integers()),
    "warm_start": st.one_of(st.integers(), text, st.floats()),
    # a count of 1 or more is refused too: GOOD_PARAMS does not warm-start
    "warm_start_epochs": st.one_of(st.integers(max_value=10), text, st.floats()),
    "patience": not_a_count,
    "monitor": st.sampled_from(["acc", "", "val_loss"]),
    "epoch_samples": not_a_count.filter(lambda v: v is not None),  # None: every example
    "semi_supervised": st.one_of(
        st.fixed_dictionaries({"method": st.sampled_from(["FixMatch", "mixmatch", ""])}),
        st.fixed_dictionaries({"threshold": st.one_of(st.floats(min_value=1.0,
                                                                exclude_min=True),
                                                      st.floats(max_value=-1e-9),
                                                      not_a_number)}),
        st.fixed_dictionaries({"mu": not_a_count}),
        st.fixed_dictionaries({"weight": st.one_of(st.floats(max_value=-1e-9),
                                                   not_a_number)}),
        st.fixed_dictionaries({"steps_per_epoch": not_a_count}),
        st.fixed_dictionaries({"flip": st.one_of(st.integers(), text)}),
        st.fixed_dictionaries({"epochs": st.integers()}),
        text, st.integers(), st.lists(st.integers(), max_size=2)),
    "unknown_key": st.integers(),
}


@fuzz(120)
@given(key=st.sampled_from(sorted(BAD_PARAMS)), data=st.data())
def test_a_bad_net_param_is_refused_when_the_net_is_made(key, data):
    params = {**GOOD_PARAMS, key: data.draw(BAD_PARAMS[key])}
    with refused("Net", f"bad {key}") as error:
        Net(partial(MLP, n_features=4, n_classes=3), params, device="cpu")
    assert key in str(error.value) or key == "unknown_key" and "unknown" in str(error.value)


def small_pool() -> Data:
    rng = np.random.default_rng(0)
    data = Data(rng.normal(size=(30, 4)).astype(np.float32), np.arange(30) % 3,
                rng.normal(size=(6, 4)).astype(np.float32), np.arange(6) % 3)
    data.initialize_labels(6, random_state=0)
    return data


def numeric_options(cls: type) -> list[tuple[str, Any]]:
    """The keyword options of a strategy whose default is a number (flags excluded)."""
    found = []
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for p in inspect.signature(init).parameters.values():
            if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD:
                default = p.default
                if isinstance(default, (int, float)) and not isinstance(default, bool):
                    found.append((p.name, default))
    return sorted(set(found))


OPTIONS = [(name, option, default) for name in sorted(STRATEGIES)
           for option, default in numeric_options(get_strategy(name))
           if option != "random_state"]


@fuzz(150)
@given(choice=st.sampled_from(OPTIONS),
       bad=st.one_of(st.sampled_from([math.nan, math.inf, -math.inf, "2", None, True]),
                     st.lists(st.integers(), min_size=1, max_size=2)))
def test_a_bad_strategy_option_is_refused_when_the_strategy_is_made(choice, bad):
    name, option, _default = choice
    # An infinite temperature-like beta is meaningful: the stochastic batch becomes top-n.
    assume(not (option == "beta" and bad == math.inf))
    # None means "no cap" for TypiClust's clusters, "the posterior's default" for n_drop.
    assume(not (bad is None and option in ("max_clusters", "n_drop")))
    net = Net(partial(MLP, n_features=4, n_classes=3), GOOD_PARAMS, device="cpu")
    with refused(f"{name}(...)", f"bad {option}") as error:
        get_strategy(name)(small_pool(), net, **{option: bad})
    assert option in str(error.value)


def test_every_strategy_with_numeric_options_is_covered():
    names = {name for name, _, _ in OPTIONS}
    assert len(OPTIONS) >= 20 and len(names) >= 10, OPTIONS


@fuzz(40)
@given(options=st.one_of(
    st.fixed_dictionaries({"n_targets": st.one_of(st.integers(max_value=0), not_a_count)}),
    st.fixed_dictionaries({"posterior": st.sampled_from(["mc_dropout", "softmax", "laplace"])}),
    st.fixed_dictionaries({"n_drop": st.integers(min_value=-3, max_value=1)}),
))
def test_epig_refuses_bad_targets_and_posteriors_that_break_its_joint(options):
    # EPIG's joint predictive needs sample k to be one network for candidates and targets:
    # fresh dropout masks per example, a single softmax or too few samples are refused.
    net = Net(partial(MLP, n_features=4, n_classes=3), GOOD_PARAMS, device="cpu")
    (option, value), = options.items()
    with refused("EPIG(...)", f"bad {option}") as error:
        get_strategy("EPIG")(small_pool(), net, **options)
    named = value if option == "posterior" else option
    assert str(named) in str(error.value)
