"""Random sampling: the baseline every strategy must beat."""

from __future__ import annotations

import numpy as np

from deepal.strategies.base import Strategy


class RandomSampling(Strategy):
    """Pick ``n`` unlabeled examples uniformly at random. Needs no trained model."""

    needs_model = False

    def query(self, n: int) -> np.ndarray:
        return self.rng.choice(self.candidate_idxs(), size=n, replace=False)
