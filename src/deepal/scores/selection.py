"""Turning scores into a batch: top-n with safe handling of non-finite values."""

from __future__ import annotations

import warnings

import numpy as np
import torch


def top_n(scores: np.ndarray | torch.Tensor, n: int) -> np.ndarray:
    """Positions of the ``n`` largest scores, largest first; ties go to the lower position.

    NaN scores are ranked last (with a warning) so that a numerical failure is never picked
    ahead of a real score; ``+inf`` ranks first and ``-inf`` last, as their values say.

    >>> top_n(np.array([0.1, 0.9, 0.5, 0.9]), 2).tolist()
    [1, 3]
    """
    values = _as_float_array(scores)
    if not 0 <= n <= len(values):
        raise ValueError(f"cannot pick {n} of {len(values)} scores")
    nan = np.isnan(values)
    if nan.any():
        warnings.warn(
            f"{int(nan.sum())} of {len(values)} scores are NaN; they are ranked last",
            RuntimeWarning, stacklevel=2,
        )
        values[nan] = -np.inf
    # A stable sort on the negated scores keeps equal scores in index order (deterministic);
    # NaN were mapped to -inf above, and sorting -values puts them after every finite score.
    order = np.argsort(-values, kind="stable")
    if nan.any():
        order = np.concatenate([order[~nan[order]], order[nan[order]]])
    return order[:n]


def bottom_n(scores: np.ndarray | torch.Tensor, n: int) -> np.ndarray:
    """Positions of the ``n`` smallest scores, smallest first (NaN last, with a warning)."""
    return top_n(-_as_float_array(scores), n)


def _as_float_array(scores: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(scores, torch.Tensor):
        scores = scores.detach().cpu().numpy()
    return np.asarray(scores, dtype=np.float64).reshape(-1).copy()
