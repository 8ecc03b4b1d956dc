"""BatchBALD's sampled steps: how close deepal's estimate comes to exact enumeration, against
two plain importance-sampling estimators written here (configurations drawn with a uniformly
random posterior sample each, or with an equal number per posterior sample).

Three figures, as ``python -m benchmarks --only batchbald-accuracy`` prints them:

- the standard deviation, over generator seeds, of a candidate's gain at the fifth pick
  (the first four picks fixed, so their ``C^4`` configurations are sampled);
- over seeds, how often the sampled fifth pick is the exactly enumerated greedy pick;
- the joint mutual information of ``b = 10`` batches picked from 2,000 candidates, each
  batch scored by one large stratified sample (the same for every batch).
"""

from __future__ import annotations

import numpy as np
import torch

from deepal.scores import batchbald as batchbald_scores
from deepal.scores.batchbald import _Configurations, batchbald
from deepal.scores.uncertainty import entropy

SIZE = {"n_samples": 20, "n_classes": 10, "n_configurations": 1000}
GAIN_SEEDS = 100
MATCH_SEEDS = 30


def posterior(n_pool: int, seed: int, n_samples: int = 20, n_classes: int = 10) -> torch.Tensor:
    """Posterior samples ``(K, N, C)`` of a classifier that is unsure in varying degrees:
    softmax of per-example logits plus per-sample noise of per-example strength."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n_pool, n_classes, generator=g, dtype=torch.float64) * 2.0
    spread = torch.rand(n_pool, 1, generator=g, dtype=torch.float64) * 2.0
    noise = torch.randn(n_samples, n_pool, n_classes, generator=g, dtype=torch.float64)
    return torch.softmax(base + spread * noise, dim=2)


def reference_entropy(
    picked: torch.Tensor, candidates: torch.Tensor, m: int, stratified: bool,
    generator: torch.Generator,
) -> torch.Tensor:
    """``H(y_picked, y_x)`` for each candidate by importance sampling ``m`` configurations.

    ``picked`` ``(K, t, C)``, ``candidates`` ``(K, B, C)``. Each configuration first takes a
    posterior sample, uniformly at random or (``stratified``) in turn, then its labels."""
    k, t, _ = picked.shape
    if stratified:
        source = torch.arange(m) % k
        weight = 1.0 / (k * torch.bincount(source, minlength=k)[source].double())
    else:
        source = torch.randint(k, (m,), generator=generator)
        weight = torch.full((m,), 1.0 / m, dtype=torch.float64)
    labels = torch.stack([torch.multinomial(picked[source, i], 1, generator=generator)[:, 0]
                          for i in range(t)], dim=1)  # (m, t)
    p_k = picked[:, torch.arange(t)[None, :], labels].prod(dim=2)  # (K, m)
    joint = torch.einsum("km,kbc->mbc", p_k, candidates) / k
    plogp = torch.special.xlogy(joint, joint).sum(dim=2) / p_k.mean(dim=0)[:, None]
    return -(weight[:, None] * plogp).sum(dim=0)


def configurations(picked: torch.Tensor, m: int, generator: torch.Generator
                   ) -> _Configurations:
    """deepal's configurations of the picks ``(K, t, C)``, built pick by pick."""
    configs = _Configurations(picked.shape[0], m, generator, torch.device("cpu"))
    for t in range(1, picked.shape[1] + 1):
        configs.add(picked[:, :t])
    return configs


def gains(samples: torch.Tensor, picks: list[int], estimator: str, m: int,
          generator: torch.Generator | None = None) -> torch.Tensor:
    """Every other candidate's gain ``I(y_picks, y_x; w) - I(y_picks; w)`` after ``picks``:
    ``"exact"`` by enumeration, ``"deepal"`` by deepal's sampled step, ``"uniform"`` or
    ``"stratified"`` by the reference joint entropy minus the exact ``H(y_picks)``."""
    picked = samples[:, picks]
    rest = [i for i in range(samples.shape[1]) if i not in picks]
    candidates = samples[:, rest]
    conditional = entropy(candidates).mean(dim=0)
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    if estimator in ("exact", "deepal"):
        configs = configurations(picked, m if estimator == "deepal" else 10**9, g)
        assert configs.sampled == (estimator == "deepal")
        return configs.conditional_entropy(candidates) - conditional
    exact = configurations(picked, 10**9, g)
    picked_entropy = -float(batchbald_scores.sum_xlogx(exact.weights))
    stratified = estimator == "stratified"
    return reference_entropy(picked, candidates, m, stratified, g) - picked_entropy - conditional


def gain_error(samples: torch.Tensor, picks: list[int], estimator: str, m: int
               ) -> tuple[float, float]:
    """Over seeds, the std of a candidate's estimated gain and its root mean squared error
    against the exact gain, each averaged over the candidates."""
    exact = gains(samples, picks, "exact", m)
    runs = torch.stack([gains(samples, picks, estimator, m, torch.Generator().manual_seed(s))
                        for s in range(GAIN_SEEDS)])
    rmse = ((runs - exact) ** 2).mean(dim=0).sqrt().mean()
    return float(runs.std(dim=0).mean()), float(rmse)


def match_rate(samples: torch.Tensor, m: int) -> tuple[int, list[int]]:
    """Seeds (of ``MATCH_SEEDS``) whose sampled fifth pick is the enumerated one."""
    exact, _ = batchbald(samples, 5, n_configurations=samples.shape[2] ** 4)
    hits = 0
    for seed in range(MATCH_SEEDS):
        sampled, _ = batchbald(samples, 5, n_configurations=m,
                               generator=torch.Generator().manual_seed(seed))
        hits += int(sampled.tolist() == exact.tolist())
    return hits, exact.tolist()


def reference_match_rate(samples: torch.Tensor, picks: list[int], m: int,
                         stratified: bool) -> int:
    """The same count for a reference estimator choosing the fifth pick after ``picks``."""
    picked = samples[:, picks[:4]]
    rest = [i for i in range(samples.shape[1]) if i not in picks[:4]]
    conditional = entropy(samples[:, rest]).mean(dim=0)
    hits = 0
    for seed in range(MATCH_SEEDS):
        g = torch.Generator().manual_seed(seed)
        gain = reference_entropy(picked, samples[:, rest], m, stratified, g) - conditional
        hits += int(rest[int(gain.argmax())] == picks[4])
    return hits


def batch_joint_mi(samples: torch.Tensor, picks: np.ndarray, m: int = 200_000) -> float:
    """``I(y_batch; w)`` by one large stratified Monte Carlo sample of the batch's labels."""
    picked = samples[:, picks]
    k, t, _ = picked.shape
    g = torch.Generator().manual_seed(12345)
    source = torch.arange(m) % k
    labels = torch.stack([torch.multinomial(picked[source, i], 1, generator=g)[:, 0]
                          for i in range(t)], dim=1)
    log_p_k = picked.log()[:, torch.arange(t)[None, :], labels].sum(dim=2)  # (K, m)
    joint_entropy = -float((torch.logsumexp(log_p_k, dim=0) - np.log(k)).mean())
    return joint_entropy - float(entropy(picked).mean(dim=0).sum())


def run(full: bool) -> None:
    m = SIZE["n_configurations"]
    print(f"\n== batchbald-accuracy: K={SIZE['n_samples']}, C={SIZE['n_classes']}, "
          f"M={m} sampled configurations")
    small = posterior(200, seed=0)
    hits, exact = match_rate(small, m)
    print(f"  a candidate's estimated gain at the 5th pick, N=200, over {GAIN_SEEDS} seeds "
          "(mean over candidates): std, and root mean squared error against the exact gain")
    for estimator in ("deepal", "uniform", "stratified"):
        std, rmse = gain_error(small, exact[:4], estimator, m)
        print(f"    {estimator:<10} std {std:.5f}, rmse {rmse:.5f}")
    print(f"  5th pick equal to the enumerated greedy pick, {MATCH_SEEDS} seeds:")
    print(f"    deepal     {hits}/{MATCH_SEEDS}")
    for stratified in (False, True):
        name = "stratified" if stratified else "uniform"
        print(f"    {name:<10} {reference_match_rate(small, exact, m, stratified)}/"
              f"{MATCH_SEEDS}")
    n_batches = 5 if full else 2
    scores = []
    for seed in range(n_batches):
        large = posterior(2000, seed=100 + seed)
        picks, reported = batchbald(large, 10, n_configurations=m,
                                    generator=torch.Generator().manual_seed(seed))
        scores.append((batch_joint_mi(large, picks), float(reported[-1])))
    print(f"  joint MI of b=10 batches from 2,000 candidates ({n_batches} pools; batch "
          "scored by 200,000 stratified configurations; log K = "
          f"{np.log(SIZE['n_samples']):.4f}):")
    print(f"    deepal     {np.mean([s for s, _ in scores]):.4f} (as reported while picking: "
          f"{np.mean([r for _, r in scores]):.4f})")
