"""Learning-curve metrics: area under the budget curve (AUBC), final accuracy, labels needed
to reach a target, and their mean and standard deviation over seeds. Pure functions on
arrays."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from deepal.errors import DeepALError


def _curve(n_labeled: Sequence[float], accuracy: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(n_labeled, dtype=float)
    y = np.asarray(accuracy, dtype=float)
    if x.ndim != 1 or x.shape != y.shape or len(x) == 0:
        raise DeepALError("a learning curve needs as many accuracies as label counts (>= 1)")
    if np.any(np.diff(x) <= 0):
        raise DeepALError("label counts of a learning curve must increase strictly")
    return x, y


def aubc(n_labeled: Sequence[float], accuracy: Sequence[float]) -> float:
    """Area under the accuracy-vs-labels curve (trapezoidal rule), divided by the label range,
    so it is the curve's mean accuracy over the budget, in [0, 1].

    The trapezoids follow the actual label counts, so a last round smaller than the others (a
    budget that is not a multiple of the query size) weighs only its share of the range.

    Parameters
    ----------
    n_labeled:
        Labels used at each round, strictly increasing.
    accuracy:
        Test accuracy at each round.

    Returns
    -------
    float
        The normalised area; a one-point curve's area is its accuracy.

    Examples
    --------
    >>> aubc([100, 200, 250], [0.5, 0.7, 0.8])
    0.65
    """
    x, y = _curve(n_labeled, accuracy)
    if len(x) == 1:
        return float(y[0])
    area = float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))
    return area / float(x[-1] - x[0])


def final_accuracy(accuracy: Sequence[float]) -> float:
    """The accuracy at the last round."""
    if len(accuracy) == 0:
        raise DeepALError("an empty learning curve has no final accuracy")
    return float(accuracy[-1])


def labels_to_reach(
    n_labeled: Sequence[float], accuracy: Sequence[float], target: float
) -> int | None:
    """The fewest labels at which the curve reaches ``target`` accuracy (``None``: never)."""
    x, y = _curve(n_labeled, accuracy)
    reached = np.flatnonzero(y >= target)
    return int(x[reached[0]]) if len(reached) else None


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``; 0 for a single value) over seeds."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        raise DeepALError("no values to average")
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0


def mean_curve(curves: Sequence[tuple[Sequence[float], Sequence[float]]]) -> tuple[
    np.ndarray, np.ndarray, np.ndarray
]:
    """Mean and sample standard deviation over seeds of curves on the same label counts.

    Parameters
    ----------
    curves:
        ``(n_labeled, accuracy)`` per seed.

    Returns
    -------
    (n_labeled, mean, std)
        Arrays over the label counts; the curves are cut to the shortest one (runs still in
        progress) and must agree on their label counts.
    """
    if not curves:
        raise DeepALError("no curves to average")
    length = min(len(x) for x, _ in curves)
    xs = np.array([np.asarray(x, dtype=float)[:length] for x, _ in curves])
    ys = np.array([np.asarray(y, dtype=float)[:length] for _, y in curves])
    if not np.all(xs == xs[0]):
        raise DeepALError("curves averaged over seeds must use the same label counts")
    std = ys.std(axis=0, ddof=1) if len(ys) > 1 else np.zeros(length)
    return xs[0], ys.mean(axis=0), std


def quartiles(values: Sequence[float | None]) -> tuple[float, float, float]:
    """Lower quartile, median and upper quartile of ``values`` (numpy's default linear
    interpolation), e.g. labels needed to reach a target over seeds.

    ``None`` (a seed that never reached the target) counts as infinitely many labels, so a
    statistic that depends on it is ``inf``.

    Examples
    --------
    >>> quartiles([100, 200, 300, 400, 500])
    (200.0, 300.0, 400.0)
    >>> quartiles([100, 200, None])
    (150.0, 200.0, inf)
    """
    if len(values) == 0:
        raise DeepALError("no values to take quartiles of")
    ordered = sorted(np.inf if v is None else float(v) for v in values)

    def at(q: float) -> float:
        position = (len(ordered) - 1) * q
        low, high = int(np.floor(position)), int(np.ceil(position))
        if low == high or ordered[high] == np.inf:
            return ordered[high] if low != high else ordered[low]
        return ordered[low] + (ordered[high] - ordered[low]) * (position - low)

    return at(0.25), at(0.5), at(0.75)
