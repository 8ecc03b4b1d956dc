"""BatchBALD (Kirsch, van Amersfoort & Gal, 2019): greedy joint mutual information.

BALD scores each example alone, so a batch of the top ``n`` is often ``n`` copies of one
question. BatchBALD scores the batch as a whole, with the mutual information between the
batch's labels and the model parameters::

    I(y_1..y_n ; w) = H(y_1..y_n) - sum_i E_w H(y_i | w)

and builds the batch greedily (a ``1 - 1/e`` approximation, as the score is submodular): each
step adds the candidate that maximises the joint score with the examples already picked.

With ``K`` posterior samples ``p_k``, the joint predictive of a configuration ``y_1..y_t`` is
``p(y_1..y_t) = mean_k prod_i p_k(y_i)``. A step's gain is a conditional mutual information,
by the chain rule::

    I(y_1..y_t, y_x ; w) - I(y_1..y_t ; w) = H(y_x | y_1..y_t) - E_w H(y_x | w)
    H(y_x | y_1..y_t) = sum_ŷ p(ŷ) H(y_x | ŷ),  p(y_x | ŷ) = sum_k p_k(ŷ) p_k(y_x) / sum_k p_k(ŷ)

and the reported joint score is the sum of the gains. While the ``C^t`` configurations ``ŷ``
number at most ``n_configurations``, they are enumerated and every figure is exact. Beyond
that, as in the paper, ``M = n_configurations`` configurations are sampled from the joint
predictive, and ``H(y_x | y_1..y_t)`` is their mean of ``H(y_x | ŷ_m)``. Two choices keep
that estimate tight for its cost:

- the sampled configurations are stratified over the posterior samples: each sample ``k``
  draws an equal share of them (``M / K``; the shares are weighted when ``K`` does not
  divide ``M``), which removes the noise of choosing ``k`` at random;
- the estimate is of the conditional entropy, whose terms lie in ``[0, log C]``, not of the
  joint entropy ``H(y_1..y_t, y_x)``, whose terms ``-log p(ŷ_m)`` grow with the batch. The
  two differ by an estimate of ``H(y_1..y_t)``, the same for every candidate of a step:
  leaving it out changes no choice among them, but it keeps its noise out of the gains
  (which the lazy bounds of later steps compare) and out of the reported joint score.

Memory is ``O(K * M)`` for the configurations plus a bounded chunk of candidates at a time,
never ``O(N * C^t)``. Everything runs on the samples' device (a GPU makes the sampled steps,
``N * K * M * C`` operations in float64, fast); the configurations are drawn on the CPU from
the CPU generator, so a seed gives the same batch on every device up to rounding.

Each gain is unbiased; their sum, the reported joint score, is clamped to ``[0, log K]``,
where every mutual information with ``K`` samples lies (a sampled gain can come out slightly
negative, and the best of many noisy gains is biased upwards). More configurations make
every figure finer.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from deepal.scores.uncertainty import entropy

# Configurations scored together (see joint_entropy) and the bound on a chunk's float64
# elements: blocks that fit a CPU's cache measured ~1.4x faster than one (M, B, C) tensor
# there; on an accelerator a step's cost is mostly launching its kernels, so blocks are larger.
CONFIGURATION_BLOCK = 512
ACCELERATOR_CONFIGURATION_BLOCK = 8192
CHUNK_ELEMENTS = 2**22
ACCELERATOR_CHUNK_ELEMENTS = 2**25


def step_sizes(device: torch.device) -> tuple[int, int]:
    """Configurations per block and float64 elements per chunk on ``device``."""
    if device.type == "cpu":
        return CONFIGURATION_BLOCK, CHUNK_ELEMENTS
    return ACCELERATOR_CONFIGURATION_BLOCK, ACCELERATOR_CHUNK_ELEMENTS


def sum_xlogx(p: torch.Tensor) -> torch.Tensor:
    """``sum_c p log p`` over the last axis, with ``0 log 0 = 0``; a NaN stays NaN."""
    if p.device.type != "cpu":
        return torch.special.xlogy(p, p).sum(dim=-1)
    # On a CPU torch's xlogy took as long as the matrix product that makes the joint
    # probabilities; log, clamp and multiply take about 70% of that (the greedy search 15%
    # less in all, same picks). The clamp turns log 0 = -inf into a finite number, so 0 log 0
    # is 0 and not NaN.
    return p.log().clamp_min_(torch.finfo(p.dtype).min).mul_(p).sum(dim=-1)


def stratified_sources(n_samples: int, n_configurations: int) -> torch.Tensor:
    """The posterior sample each sampled configuration is drawn from: ``0, 1, .., K - 1``
    in turn, so that every sample draws an equal share (one more for the first
    ``M mod K``).

    Parameters
    ----------
    n_samples:
        ``K``, the posterior samples.
    n_configurations:
        ``M``, the configurations.

    Returns
    -------
    torch.Tensor
        Shape ``(M,)``, int64.

    Examples
    --------
    >>> stratified_sources(3, 7).tolist()
    [0, 1, 2, 0, 1, 2, 0]
    """
    return torch.arange(n_configurations) % n_samples


class _Configurations:
    """Label configurations of the examples picked so far and their probability under each
    posterior sample, ``p_k(ŷ_m)`` up to a factor of column ``m`` (``probs[k, m]``), and the
    weight of each in an expectation over configurations.

    Exact mode enumerates every configuration (``probs`` are the probabilities themselves,
    the weight of ``ŷ_m`` is ``p(ŷ_m)``); sampled mode holds ``M`` configurations drawn from
    the joint predictive, each drawn by first taking a posterior sample ``k_m`` (stratified:
    every sample in turn) and then labels from ``p_{k_m}``, which is what lets a new pick
    extend them in place; the weights are ``1 / (K * M_k)`` for the ``M_k`` configurations
    drawn from sample ``k``. Sampled columns are rescaled to a maximum of 1 so long products never
    underflow: the conditional entropies need only the ratios within a column."""

    def __init__(
        self, n_samples: int, n_configurations: int, generator: torch.Generator,
        device: torch.device,
    ) -> None:
        self.block = step_sizes(device)[0]
        self.probs = torch.ones(n_samples, 1, dtype=torch.float64, device=device)
        self.weights = torch.ones(1, dtype=torch.float64, device=device)
        self.sampled = False
        self.n_configurations = n_configurations
        self.generator = generator
        self.source: torch.Tensor | None = None  # k_m of each sampled configuration
        self.labels: torch.Tensor | None = None  # (M, t) labels of each sampled configuration

    def conditional_entropy(self, candidates: torch.Tensor) -> torch.Tensor:
        """``H(y_x | y_picked)`` for each candidate; ``candidates`` has shape ``(K, B, C)``."""
        n_samples, batch, n_classes = candidates.shape
        n_configs = self.probs.shape[1]
        flat = candidates.reshape(n_samples, -1) / n_samples
        total = torch.zeros(batch, dtype=torch.float64, device=candidates.device)
        for start in range(0, n_configs, self.block):
            probs = self.probs[:, start:start + self.block]
            # joint[m, b, c] = mean_k p_k(ŷ_m) p_k(y_b = c), up to the factor of column m; it
            # sums over c to marginal[m], so with p(c | ŷ_m) = joint / marginal,
            # sum_c p log p = sum_c joint log joint / marginal - log marginal (scale-free).
            joint = (probs.T @ flat).reshape(-1, batch, n_classes)
            marginal = probs.mean(dim=0)[:, None]
            plogp = sum_xlogx(joint) / marginal - marginal.log()  # (block, B)
            # an enumerated configuration of probability 0 has weight 0 (and a NaN here)
            plogp = torch.where(marginal > 0, plogp, 0.0)
            total += self.weights[start:start + self.block] @ plogp
        return -total

    def add(self, picked: torch.Tensor) -> None:
        """Extend every configuration with the label of a new pick, probabilities ``(K, C)``
        (``picked`` also holds all earlier picks as ``(K, t, C)`` for a switch to sampling)."""
        new = picked[:, -1]
        n_samples, n_classes = new.shape
        if not self.sampled and self.probs.shape[1] * n_classes <= self.n_configurations:
            self.probs = (self.probs[:, :, None] * new[:, None, :]).reshape(n_samples, -1)
            self.weights = self.probs.mean(dim=0)
            return
        if not self.sampled:
            self._sample(picked)
            return
        assert self.source is not None and self.labels is not None
        drawn = torch.multinomial(new.cpu()[self.source], 1, generator=self.generator)[:, 0]
        self.labels = torch.cat([self.labels, drawn[:, None]], dim=1)
        self._rescale(self.probs.log() + new[:, drawn.to(new.device)].log())

    def _sample(self, picked: torch.Tensor) -> None:
        """Draw ``M`` configurations of all the picks from scratch and switch to sampling."""
        n_samples, n_picked, _ = picked.shape
        on_cpu = picked.cpu()  # (K, t, C): small; the CPU generator draws from it
        self.source = stratified_sources(n_samples, self.n_configurations)
        share = torch.bincount(self.source, minlength=n_samples)[self.source]
        self.weights = (1.0 / (n_samples * share.double())).to(picked.device)
        self.labels = torch.stack(
            [torch.multinomial(on_cpu[self.source, i], 1, generator=self.generator)[:, 0]
             for i in range(n_picked)], dim=1,
        )  # (M, t)
        # log p_k(ŷ_m) = sum_i log p_k(y_i = ŷ_mi)
        steps = torch.arange(n_picked, device=picked.device)[None, :]
        log_probs = picked.log()[:, steps, self.labels.to(picked.device)].sum(dim=2)
        self.sampled = True
        self._rescale(log_probs)

    def _rescale(self, log_probs: torch.Tensor) -> None:
        self.probs = (log_probs - log_probs.max(dim=0).values).exp()


def batchbald(
    samples: torch.Tensor,
    n: int,
    n_configurations: int = 1_000,
    generator: torch.Generator | None = None,
    chunk_elements: int | None = None,
    lazy: bool = True,
) -> tuple[np.ndarray, torch.Tensor]:
    """Greedy BatchBALD batch of ``n`` examples.

    Parameters
    ----------
    samples:
        Posterior samples of class probabilities, shape ``(K, N, C)``, on any device (the
        work runs there).
    n:
        Batch size, ``0 <= n <= N``.
    n_configurations:
        Enumerate the label configurations of the picks while there are at most this many,
        else sample this many (the paper's ``M``).
    generator:
        Source of the sampled configurations (a CPU generator, whatever the device).
    chunk_elements:
        Bound on the float64 elements of one chunk of candidates against one block of
        configurations (``min(M, block) * B * C``, with blocks of 512 configurations on a CPU
        and 8,192 elsewhere); default ``2**22`` on a CPU, ``2**25`` elsewhere.
    lazy:
        Lazy greedy evaluation (Minoux, 1978): a candidate's gain can only shrink as the
        batch grows (submodularity), so its last computed gain bounds the next one and
        candidates are scored, best bound first, only until no remaining bound can beat
        the best gain found. The batch is the one plain greedy finds (exactly so while the
        configurations are enumerated; sampled estimates are submodular only
        approximately); ``False`` scores every candidate at every step.

    Returns
    -------
    positions:
        The picks in greedy order, shape ``(n,)``.
    joint_mi:
        ``I(y_1..y_t ; w)`` of the first ``t`` picks for ``t = 1..n``, shape ``(n,)``, float64,
        within ``[0, log K]``; the first entry is the first pick's BALD score.
    """
    if samples.dim() != 3:
        raise ValueError(f"expected samples of shape (K, N, C), got {tuple(samples.shape)}")
    n_samples, n_pool, n_classes = samples.shape
    if not 0 <= n <= n_pool:
        raise ValueError(f"cannot pick {n} of {n_pool} examples")
    if n_configurations < 1:
        raise ValueError(f"n_configurations must be >= 1, got {n_configurations}")
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    device = samples.device
    configs = _Configurations(n_samples, n_configurations, generator, device)
    if chunk_elements is None:
        chunk_elements = step_sizes(device)[1]
    conditional = entropy(samples.double()).mean(dim=0)  # E_w H(y_x | w), (N,)
    bound = torch.full((n_pool,), torch.inf, dtype=torch.float64, device=device)  # gain bounds
    available = torch.ones(n_pool, dtype=torch.bool, device=device)
    picks: list[int] = []
    joint_mi = [0.0]
    for _ in range(n):
        block = min(configs.probs.shape[1], configs.block)
        chunk = max(1, chunk_elements // (block * n_classes))
        if lazy:
            chunk = min(chunk, 256)  # small chunks let the bounds prune
        best, best_gain = _best_candidate(samples, configs, conditional, bound, available,
                                          chunk, lazy)
        picks.append(best)
        joint_mi.append(joint_mi[-1] + best_gain)
        available[best] = False
        configs.add(samples[:, picks].double())
    # A sum of sampled gains can leave [0, log K], where every mutual information with K
    # equally likely posterior samples lies (it is at most their entropy).
    reported = torch.tensor(joint_mi[1:], dtype=torch.float64).clamp_(0.0, math.log(n_samples))
    return np.asarray(picks, dtype=np.int64), reported


def _best_candidate(
    samples: torch.Tensor,
    configs: _Configurations,
    conditional: torch.Tensor,
    bound: torch.Tensor,
    available: torch.Tensor,
    chunk: int,
    lazy: bool,
) -> tuple[int, float]:
    """One greedy step: the available position with the largest gain in joint mutual
    information and that gain; ``bound`` (every candidate's last gain) is updated for the
    candidates scored."""
    remaining = available.nonzero().flatten()
    order = remaining[torch.argsort(-bound[remaining], stable=True)]
    best, best_gain = -1, -torch.inf
    for start in range(0, len(order), chunk):
        if lazy and best >= 0 and float(bound[order[start]]) < best_gain:
            break  # nothing left can beat the best gain found
        positions = order[start:start + chunk]
        candidates = samples[:, positions].double()
        gain = configs.conditional_entropy(candidates) - conditional[positions]
        gain = torch.nan_to_num(gain, nan=-torch.inf)
        bound[positions] = gain
        top = float(gain.max())
        # ties go to the lowest pool position, as top_n does
        first = int(positions[gain == top].min()) if top > -torch.inf else int(positions.min())
        if top > best_gain or (top == best_gain and first < best) or best < 0:
            best, best_gain = first, top
    return best, best_gain


def joint_mutual_information(samples: torch.Tensor) -> float:
    """Exact ``I(y_1..y_t ; w)`` of ``t`` examples by enumerating all ``C^t`` configurations.

    Parameters
    ----------
    samples:
        Posterior samples, shape ``(K, t, C)``; ``C^t`` must be small.

    Returns
    -------
    float
        The joint mutual information in nats.
    """
    n_samples, n_examples, n_classes = samples.shape
    probs = samples.double()
    joint = torch.ones(n_samples, 1, dtype=torch.float64)
    for i in range(n_examples):
        joint = (joint[:, :, None] * probs[:, i, None, :]).reshape(n_samples, -1)
    joint_entropy = entropy(joint.mean(dim=0))
    return float(joint_entropy - entropy(probs).mean(dim=0).sum())
