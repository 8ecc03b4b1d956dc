"""Greedy k-center (core-set) selection: a running minimum distance per point, exact picks.

:class:`FarthestFirst` keeps, for a block of points, each point's squared distance to the
nearest centre so far, and finds the farthest point. :func:`k_center_greedy` runs one over
the whole pool; :mod:`deepal.sharded` runs one per shard and compares their answers. Both
give the same picks, because no pick depends on how the distances were grouped:

- The running minima are computed in blocks by float32 matrix products (fast, but each value
  rounds with the block it sits in) and carry a known bound on that rounding,
  :meth:`FarthestFirst.margin`.
- The points whose bounds reach the farthest one's are computed again in float64 against
  every centre (certified), with a bound of about ``1e-12`` relative.
- When another point still lies within twice that bound of the farthest one, the contenders
  are compared on :func:`exact_sq_dists`, which computes each pair's distance from that pair
  alone, in a fixed order: the same value on one machine or on many, in any block.

The comparison is the rule of :func:`pick_farthest`: the largest exact distance, ties to the
lowest position. Exact comparisons are rare (a tie in float64, or duplicate points), and the
certified points few, so the rule costs little beside the products.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from deepal.errors import DeepALError
from deepal.scores.distances import DEFAULT_CHUNK_SIZE, min_sq_dists, sq_dists_to

#: The precision of every running minimum and exact distance.
WORK_DTYPE = torch.float64
_UNIT_ROUNDOFF = 2.0**-53
# Squared distances beyond this are left to float64 (a margin below float32's largest).
_FLOAT32_SAFE = 1e36
# Elements of one block of differences in exact_sq_dists (32 MB in float64).
_EXACT_BLOCK = 1 << 22


def exact_sq_dists(points: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Squared distances computed from each pair alone: float64 differences, squared, then
    summed by halving the feature axis (an elementwise add per level).

    Every operation is elementwise, so a pair's value never depends on the other rows, the
    block sizes or the machine (IEEE arithmetic), unlike a matrix product's. It costs
    ``O(P C d)`` memory traffic against the product's ``O(P C d)`` flops, so it is kept for
    the few near-ties of :class:`FarthestFirst`.

    Parameters
    ----------
    points:
        Shape ``(P, d)``.
    centres:
        Shape ``(C, d)``.

    Returns
    -------
    torch.Tensor
        Shape ``(P, C)``, float64.

    Examples
    --------
    >>> exact_sq_dists(torch.tensor([[0.0, 0.0], [1.0, 1.0]]), torch.tensor([[3.0, 4.0]]))
    tensor([[25.],
            [13.]], dtype=torch.float64)
    """
    a = points.to(WORK_DTYPE)
    b = centres.to(WORK_DTYPE)
    out = torch.empty((len(a), len(b)), dtype=WORK_DTYPE, device=a.device)
    rows = max(1, _EXACT_BLOCK // max(1, len(b) * a.shape[1]))
    for start in range(0, len(a), rows):
        diff = a[start : start + rows, None, :] - b[None, :, :]
        out[start : start + rows] = _halving_sum(diff * diff)
    return out


def _halving_sum(terms: torch.Tensor) -> torch.Tensor:
    """Sum over the last axis in a fixed order: pairs of halves, the odd term carried."""
    while terms.shape[-1] > 1:
        half = terms.shape[-1] // 2
        summed = terms[..., :half] + terms[..., half : 2 * half]
        terms = torch.cat([summed, terms[..., 2 * half :]], dim=-1)
    if terms.shape[-1] == 0:
        return terms.sum(dim=-1)
    return terms[..., 0]


def exact_min_sq_dists(points: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Each point's :func:`exact_sq_dists` to its nearest centre (``inf`` with no centre).

    >>> exact_min_sq_dists(torch.tensor([[0.0], [5.0]]), torch.tensor([[1.0], [4.0]])).tolist()
    [1.0, 1.0]
    """
    best = torch.full((len(points),), float("inf"), dtype=WORK_DTYPE, device=points.device)
    for start in range(0, len(centres), DEFAULT_CHUNK_SIZE):
        block = exact_sq_dists(points, centres[start : start + DEFAULT_CHUNK_SIZE])
        torch.minimum(best, block.min(dim=1).values, out=best)
    return best


class Farthest(NamedTuple):
    """A candidate for the next pick: its squared distance to the nearest centre, within
    ``margin`` of the exact one (``-inf`` when none is left), its position and its row."""

    value: float
    position: int
    row: torch.Tensor
    margin: float


def pick_farthest(candidates: list[Farthest], centres: list[torch.Tensor]) -> Farthest:
    """The candidate with the largest exact distance to the nearest centre (ties: lowest
    position), given values that are each within their ``margin`` of it. ``centres`` holds
    every centre's row, in blocks of shape ``(C_i, d)``.

    A candidate more than twice the largest margin below the largest value is exactly below
    the candidate with that value; only the others are compared on
    :func:`exact_min_sq_dists`, and the chosen one carries its exact value.

    >>> a = Farthest(4.0, 7, torch.tensor([2.0]), 0.0)
    >>> b = Farthest(4.0, 3, torch.tensor([-2.0]), 0.0)
    >>> pick_farthest([a, b], [torch.tensor([[0.0]])]).position
    3
    """
    live = [c for c in candidates if c.value != float("-inf")]
    if not live:
        raise ValueError("no unlabeled point is left to pick")
    top = max(c.value for c in live)
    margin = max(c.margin for c in live)
    near = [c for c in live if c.value >= top - 2 * margin]
    if len(near) == 1:
        return near[0]
    rows = torch.stack([c.row for c in near])
    exact = exact_min_sq_dists(rows, torch.cat([c.to(WORK_DTYPE) for c in centres])).tolist()
    best = max(range(len(near)), key=lambda i: (exact[i], -near[i].position))
    return near[best]._replace(value=exact[best], margin=0.0)


class FarthestFirst:
    """Running minimum squared distances from a block of points to a growing set of centres.

    Every point keeps ``key``, an upper bound on its exact distance to the nearest centre:
    the minimum of the distances computed so far (in the points' precision, by chunked
    matrix products) plus :meth:`margin` for their rounding. A bound counts only the centres
    the point was compared with, which is still an upper bound, since distances only shrink
    as centres are added.

    The point with the largest key is made certain before it is reported: its distance to
    every centre is computed in float64 (it is *certified*, with a margin of about
    ``1e-12`` relative), together with every other point whose key reaches within the
    float32 margin of it and the next largest keys; a certified point is then kept up to
    date against the centres added since, a few vectors at a time. Once the top point is
    certified and up to date, every point that could still beat it is too, and a tie within
    the float64 margin is settled by :func:`pick_farthest`. Every ``sync_every`` updates,
    all points are compared with the centres added since the last such pass in one chunked
    product, which keeps the keys tight. No ``N x N`` matrix: memory
    ``O(N + chunk_size ** 2)`` beyond the points and centres.

    Parameters
    ----------
    points:
        Shape ``(M, d)``, floating point; read in place, a block at a time.
    labeled:
        Shape ``(M,)`` booleans: points that are never picked (the labeled ones).
    offset:
        Position of ``points[0]`` in the pool, for the positions reported.
    chunk_size:
        Block size of the distance computations.
    sync_every:
        Single-point updates between two passes over the block.

    Examples
    --------
    >>> x = torch.tensor([[0.0], [1.0], [5.0]])
    >>> state = FarthestFirst(x, np.array([True, False, False]))
    >>> state.start(x[:1])
    >>> state.farthest().position
    2
    """

    #: Points certified together beyond the top one's rivals: the next picks' candidates,
    #: for one product against every centre instead of one each.
    CERTIFY_AHEAD = 32

    def __init__(self, points: torch.Tensor, labeled: np.ndarray | torch.Tensor, offset: int = 0,
                 chunk_size: int = DEFAULT_CHUNK_SIZE, sync_every: int = 256) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
        if sync_every < 1:
            raise ValueError(f"sync_every must be at least 1, got {sync_every}")
        if points.dim() != 2 or not points.is_floating_point():
            raise ValueError(f"points must be floating point of shape (M, d), got "
                             f"{points.dtype} {tuple(points.shape)}")
        self.points = points
        self.labeled = torch.as_tensor(np.asarray(labeled, dtype=bool)).reshape(-1)
        if len(self.labeled) != len(points):
            raise ValueError(f"{len(self.labeled)} labeled flags for {len(points)} points")
        self.offset, self.chunk_size, self.sync_every = int(offset), chunk_size, sync_every
        # The precision of the products, chosen by start from the points and centres.
        self.fast_dtype = WORK_DTYPE
        device, n, d = points.device, len(points), points.shape[1]
        self.key = torch.full((n,), float("-inf"), dtype=WORK_DTYPE, device=device)
        self.value = torch.zeros(n, dtype=WORK_DTYPE, device=device)  # where certified
        self.certified = torch.zeros(n, dtype=torch.bool, device=device)
        # Where certified: how many added centres the value counts.
        self.seen = torch.zeros(n, dtype=torch.int32, device=device)
        # Every centre's row in float64, those given to start first, then those added; the
        # buffer grows by doubling.
        self._rows = torch.empty((0, d), dtype=WORK_DTYPE, device=device)
        self.n_given = self.n_centres = 0
        self.synced = self.updates = 0
        self.origin = torch.zeros(d, dtype=WORK_DTYPE, device=device)
        self.sq_radius = 0.0

    @property
    def n_added(self) -> int:
        """Centres added since :meth:`start`."""
        return self.n_centres - self.n_given

    def centres(self) -> torch.Tensor:
        """Every centre so far, float64, shape ``(C, d)`` (a view)."""
        return self._rows[: self.n_centres]

    def _added_since(self, count: int) -> torch.Tensor:
        """The centres added after the first ``count`` added ones (a view)."""
        return self._rows[self.n_given + count : self.n_centres]

    def margin(self, dtype: torch.dtype = WORK_DTYPE) -> float:
        """A bound on how far a distance computed in ``dtype`` (a minimum over centres, of
        products or of differences) is from the exact one.

        Both are rounded sums of ``d`` squares, of vectors translated by a point or a
        centre; with every point and centre within ``R`` of ``origin``, each such vector is
        at most ``2R`` long, so the terms add up to at most ``16 R ** 2`` and the rounding
        to at most ``(d + 3) u 16 R ** 2`` for a unit roundoff ``u``, taken twice over here.
        Float32 products count as TF32 or bfloat16 ones where PyTorch is allowed those.
        """
        if dtype == WORK_DTYPE:
            unit = _UNIT_ROUNDOFF
        else:
            unit = {"highest": 2.0**-24, "high": 2.0**-11}.get(
                torch.get_float32_matmul_precision(), 2.0**-8)
        return 32.0 * (self.points.shape[1] + 4) * unit * self.sq_radius

    def _widen(self, rows: torch.Tensor) -> None:
        """Grow the radius so that ``rows`` lie within it (with a relative slack for the
        radius's own rounding)."""
        for start in range(0, len(rows), self.chunk_size):
            block = rows[start : start + self.chunk_size].to(WORK_DTYPE)
            far = float(sq_dists_to(self.origin, block).max())
            if not math.isfinite(far):  # NaN would leave no point ever certain
                raise DeepALError("k-center: the embeddings hold NaN or infinite values (or "
                                  "values too large to square), as a diverged network gives: "
                                  "train it again, e.g. with a lower learning rate")
            self.sq_radius = max(self.sq_radius, far * (1 + 1e-6))

    def start(self, centres: torch.Tensor) -> None:
        """Bound every unlabeled point's distance by the nearest of ``centres`` (``inf``
        when there are none; labeled points are never candidates)."""
        given = centres.to(WORK_DTYPE)
        self._rows = torch.empty((len(given) + 64, given.shape[1]), dtype=WORK_DTYPE,
                                 device=self.points.device)
        self._rows[: len(given)] = given
        self.n_given = self.n_centres = len(given)
        # Any origin gives a valid margin; one amid the data gives a tight one, cheaply.
        if len(given):
            self.origin = given.mean(dim=0)
        elif len(self.points):
            self.origin = self.points[0].to(WORK_DTYPE)
        self.sq_radius = 0.0
        self._widen(self.points)
        self._widen(given)
        # Float32 products (half precision is too coarse) unless the points are float64 or
        # their squares exceed float32's range. Decided once: keys made in one precision
        # keep that precision's margin. A centre from another shard too large for float32
        # later gives infinite keys, which are still upper bounds, and certification
        # settles them in float64.
        overflows = 16 * self.sq_radius > _FLOAT32_SAFE
        self.fast_dtype = WORK_DTYPE if self.points.dtype == WORK_DTYPE or overflows \
            else torch.float32
        fast, margin = given.to(self.fast_dtype), self.margin(self.fast_dtype)
        self.key.fill_(float("-inf"))
        unlabeled = torch.nonzero(~self.labeled).flatten().to(self.points.device)
        for start in range(0, len(unlabeled), self.chunk_size):  # no copy of every row
            rows = unlabeled[start : start + self.chunk_size]
            dists = min_sq_dists(self.points[rows], fast, self.chunk_size)
            self.key[rows] = dists.to(WORK_DTYPE) + margin
        self.certified.zero_()
        self.synced = self.updates = 0

    def add(self, centre: torch.Tensor, position: int) -> None:
        """Add the point at pool ``position`` (row ``centre``) as a centre, and retire it if
        it is one of this block's points."""
        row = centre.to(WORK_DTYPE).reshape(-1)
        self._widen(row[None])
        if self.n_centres == len(self._rows):
            grown = torch.empty((2 * len(self._rows) + 64, row.shape[0]), dtype=WORK_DTYPE,
                                device=self._rows.device)
            grown[: self.n_centres] = self._rows
            self._rows = grown
        first_centre = self.n_centres == 0
        self._rows[self.n_centres] = row
        self.n_centres += 1
        local = position - self.offset
        if 0 <= local < len(self.points):
            self.key[local] = float("-inf")
            self.certified[local] = False
        if first_centre:  # every key is inf: one pass, not an update per point
            self._sync()

    def farthest(self) -> Farthest:
        """The point farthest from every centre: largest exact distance, ties to the lowest
        position (value ``-inf`` when no candidate is left; ``inf`` before any centre)."""
        if not len(self.points):
            return Farthest(float("-inf"), -1, torch.empty(0), 0.0)
        while True:
            best = torch.max(self.key, dim=0)  # the first maximum: ties to the lowest
            local, top = int(best.indices), float(best.values)
            if top == float("-inf") or self.n_centres == 0:
                return self._report(local, top, 0.0)
            if not self.certified[local]:
                self._certify_near(top)
                continue
            if int(self.seen[local]) < self.n_added:
                self._refresh(local)
                continue
            value = float(self.value[local])
            if self._runner_up(local) < value - self.margin():
                return self._report(local, value, self.margin())
            near = torch.nonzero(self.key >= value - self.margin()).flatten()
            stale = near[~self.certified[near] | (self.seen[near] < self.n_added)]
            if len(stale):
                self._certify(stale[~self.certified[stale]])
                for i in stale[self.certified[stale]].tolist():
                    self._refresh(i)
                continue
            candidates = [self._report(i, float(self.value[i]), self.margin())
                          for i in near.tolist()]
            return pick_farthest(candidates, [self.centres()])

    def _runner_up(self, local: int) -> float:
        """The largest key but ``local``'s (a max is cheaper than a search for the few keys
        that reach a threshold, which is rarely needed)."""
        key, self.key[local] = float(self.key[local]), float("-inf")
        second = float(self.key.max())
        self.key[local] = key
        return second

    def _report(self, local: int, value: float, margin: float) -> Farthest:
        if value == float("-inf"):
            return Farthest(value, -1, torch.empty(0), 0.0)
        return Farthest(value, self.offset + local, self.points[local].clone(), margin)

    def _certify_near(self, top: float) -> None:
        """Certify the uncertified points that could beat the one whose key is ``top``:
        whatever lies more than twice the fast margin below it is surely nearer a centre.
        The next largest keys come along, for the picks to come."""
        near = self.key >= top - 2 * self.margin(self.fast_dtype)
        ahead = torch.topk(self.key, min(self.CERTIFY_AHEAD, len(self.key))).indices
        near[ahead[self.key[ahead] > float("-inf")]] = True
        self._certify(torch.nonzero(near & ~self.certified).flatten())

    def _certify(self, rows: torch.Tensor) -> None:
        """Compute the distance of ``rows`` to every centre in float64."""
        if not len(rows):
            return
        self.value[rows] = min_sq_dists(self.points[rows].to(WORK_DTYPE), self.centres(),
                                        self.chunk_size)
        self.key[rows] = self.value[rows] + self.margin()
        self.seen[rows] = self.n_added
        self.certified[rows] = True

    def _refresh(self, local: int) -> None:
        """Bring a certified point up to date with the centres it has not seen (none, if a
        pass just did)."""
        unseen = self._added_since(int(self.seen[local]))
        if not len(unseen):
            return
        nearest = sq_dists_to(self.points[local].to(WORK_DTYPE), unseen).min()
        self.value[local] = torch.minimum(self.value[local], nearest)
        self.key[local] = self.value[local] + self.margin()
        self.seen[local] = self.n_added
        self.updates += 1
        if self.updates >= self.sync_every:
            self._sync()

    def _sync(self) -> None:
        """Compare every point with the centres added since the last pass: uncertified
        points in the fast precision, certified ones in float64."""
        new64 = self._added_since(self.synced)
        if not len(new64):
            return
        new, margin = new64.to(self.fast_dtype), self.margin(self.fast_dtype)
        for start in range(0, len(self.points), self.chunk_size):
            key = self.key[start : start + self.chunk_size]  # a view: updated in place
            dists = min_sq_dists(self.points[start : start + self.chunk_size], new,
                                 self.chunk_size).to(WORK_DTYPE)
            lowered = torch.minimum(key, dists + margin)
            torch.where(self.certified[start : start + self.chunk_size], key, lowered, out=key)
        # Every certified point has seen the centres up to the last pass, at least.
        rows = torch.nonzero(self.certified).flatten()
        for start in range(0, len(rows), self.chunk_size):
            block = rows[start : start + self.chunk_size]
            dists = min_sq_dists(self.points[block].to(WORK_DTYPE), new64, self.chunk_size)
            self.value[block] = torch.minimum(self.value[block], dists)
            self.key[block] = self.value[block] + self.margin()
            self.seen[block] = self.n_added
        self.synced, self.updates = self.n_added, 0


def k_center_greedy(
    embeddings: torch.Tensor,
    labeled_mask: np.ndarray | torch.Tensor,
    n: int,
    rng: np.random.Generator | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    sync_every: int = 256,
) -> np.ndarray:
    """Greedy k-center (core-set) selection of ``n`` unlabeled points.

    Each step picks the unlabeled point farthest from its nearest centre (labeled or already
    picked; ties: lowest index), by :class:`FarthestFirst`: the picks of the plain method that
    updates every point after every pick and compares exact distances, in ``O(N)`` memory
    beyond the inputs. The start costs one chunked pass over ``unlabeled x labeled``
    distances; then each pick brings a few points up to date, with a pass over the pool
    every ``sync_every`` refreshes.

    Cold start (no labeled point): the first pick is drawn uniformly by ``rng``, or, when
    ``rng`` is ``None``, is the point nearest the mean of all embeddings (the mean summed in
    float64 and rounded to the embeddings' dtype; ties: lowest index).

    Computation is on the device of ``embeddings`` (float32 embeddings are read in place,
    a block at a time; integers become float32), in float64 and with each block of
    distances translated near the data first
    (:func:`~deepal.scores.distances.pairwise_sq_dists`), so embeddings far from the origin
    lose no precision.

    Parameters
    ----------
    embeddings:
        Shape ``(N, d)``: the whole pool, labeled points included.
    labeled_mask:
        Shape ``(N,)`` booleans: which points are already labeled (the initial centres).
    n:
        Number of points to pick, at most the number of unlabeled points.
    rng:
        Draws the first pick at a cold start; unused otherwise.
    chunk_size:
        Block size of the distance computations.
    sync_every:
        Refreshes of single points between two passes over the whole pool.

    Returns
    -------
    numpy.ndarray
        ``n`` distinct positions of unlabeled points (int64), in the order picked.

    Examples
    --------
    >>> x = torch.tensor([[0.0], [1.0], [5.0], [9.0]])
    >>> k_center_greedy(x, np.array([True, False, False, False]), 2).tolist()
    [3, 2]
    """
    x = torch.as_tensor(embeddings).detach()  # stays on its device (a GPU runs it there)
    if not x.is_floating_point():
        x = x.float()
    if x.dim() != 2:
        raise ValueError(f"embeddings must have shape (N, d), got {tuple(x.shape)}")
    labeled = torch.as_tensor(np.asarray(labeled_mask, dtype=bool)).reshape(-1).to(x.device)
    if len(labeled) != len(x):
        raise ValueError(f"labeled_mask has {len(labeled)} entries for {len(x)} points")
    n_unlabeled = int((~labeled).sum())
    if not 0 <= n <= n_unlabeled:
        raise ValueError(f"cannot pick {n} of {n_unlabeled} unlabeled points")
    state = FarthestFirst(x, labeled.cpu().numpy(), 0, chunk_size, sync_every)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    state.start(x[labeled])
    picks: list[int] = []
    if not labeled.any():
        first = int(rng.integers(len(x))) if rng is not None else nearest_to(x, pool_mean(x))[1]
        picks.append(first)
        state.add(x[first], first)
    while len(picks) < n:
        best = state.farthest()
        picks.append(best.position)
        state.add(best.row, best.position)
    return np.asarray(picks, dtype=np.int64)


def pool_mean(x: torch.Tensor) -> torch.Tensor:
    """The mean row, summed in float64 and rounded to ``x``'s dtype: a grouping of the sum
    into shards changes only its last float64 bits, which that rounding removes."""
    return (x.to(WORK_DTYPE).sum(dim=0) / len(x)).to(x.dtype)


def nearest_to(x: torch.Tensor, point: torch.Tensor) -> tuple[float, int]:
    """The exact squared distance of the row of ``x`` nearest ``point``, and its position
    (ties: lowest); ``(inf, -1)`` when ``x`` is empty.

    >>> nearest_to(torch.tensor([[0.0], [3.0], [1.0]]), torch.tensor([2.0]))
    (1.0, 1)
    """
    best, where = float("inf"), -1
    for start in range(0, len(x), DEFAULT_CHUNK_SIZE):
        dists = exact_sq_dists(x[start : start + DEFAULT_CHUNK_SIZE], point[None])[:, 0]
        local = int(dists.argmin())
        if float(dists[local]) < best:
            best, where = float(dists[local]), start + local
    return best, where
