"""One call to make a run reproducible, and the generator a ``random_state`` stands for."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators (CPU and every GPU).

    Strategies draw their own generator from numpy's global one when given no
    ``random_state``, :meth:`deepal.Data.initialize_labels` too (see :func:`generator`), and
    training shuffles with a generator drawn from torch's, so this fixes the initial pool, the
    training and the queries. Same seed, same indices, on the same machine and library
    versions.

    Parameters
    ----------
    seed:
        The seed.

    Examples
    --------
    >>> seed_everything(0)
    >>> first = generator(None).integers(1000)
    >>> seed_everything(0)
    >>> bool(generator(None).integers(1000) == first)
    True
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def generator(random_state: int | np.random.Generator | None) -> np.random.Generator:
    """The numpy generator that ``random_state`` stands for (scikit-learn's convention).

    Parameters
    ----------
    random_state:
        A seed or a generator (used as :func:`numpy.random.default_rng` uses it), or ``None``:
        a generator seeded by one draw from numpy's global generator, so ``np.random.seed``
        and :func:`seed_everything` make the result reproducible.

    Returns
    -------
    numpy.random.Generator

    Examples
    --------
    >>> int(generator(0).integers(1000)) == int(np.random.default_rng(0).integers(1000))
    True
    """
    if random_state is None:
        random_state = int(np.random.randint(0, 2**31 - 1))
    return np.random.default_rng(random_state)
