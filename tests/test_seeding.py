"""Seeding: numpy's global generator fixes every draw made without a ``random_state``."""

from __future__ import annotations

import numpy as np
import torch

from deepal import Data, seed_everything
from deepal.seeding import generator


def make(n: int = 200) -> Data:
    rng = np.random.default_rng(0)
    return Data(rng.normal(size=(n, 3)), np.arange(n) % 4)


def initial_pool_after(seed_call) -> np.ndarray:
    data = make()
    seed_call()
    return data.initialize_labels(20)


def test_seed_everything_fixes_the_initial_pool():
    first = initial_pool_after(lambda: seed_everything(7))
    assert (initial_pool_after(lambda: seed_everything(7)) == first).all()
    assert not (initial_pool_after(lambda: seed_everything(8)) == first).all()


def test_deepal_style_seeding_fixes_the_initial_pool():
    def seed(s: int):
        return lambda: (np.random.seed(s), torch.manual_seed(s))

    first = initial_pool_after(seed(3))
    assert (initial_pool_after(seed(3)) == first).all()
    assert not (initial_pool_after(seed(4)) == first).all()


def test_a_given_random_state_is_used_as_before_and_leaves_the_global_generator_alone():
    data = make()
    np.random.seed(0)
    before = np.random.get_state(legacy=True)
    chosen = data.initialize_labels(20, random_state=5)
    expected = np.sort(np.random.default_rng(5).choice(np.arange(200), size=20, replace=False))
    assert (chosen == expected).all()
    after = np.random.get_state(legacy=True)
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))


def test_generator_passes_a_generator_through_and_draws_a_seed_otherwise():
    rng = np.random.default_rng(1)
    assert generator(rng) is rng
    np.random.seed(2)
    first = generator(None).random()
    second = generator(None).random()
    np.random.seed(2)
    assert generator(None).random() == first
    assert generator(None).random() == second != first
