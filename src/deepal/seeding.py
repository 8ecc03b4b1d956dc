"""One call to make a run reproducible."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators (CPU and every GPU).

    Strategies draw their own generator from numpy's global one when given no
    ``random_state``, and training shuffles with a generator drawn from torch's, so this
    fixes the initial pool, the training and the queries. Same seed, same indices, on the
    same machine and library versions."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
