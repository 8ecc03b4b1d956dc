"""Adversarial scores (DeepFool, BIM): deepal's batched attacks vs one example at a time."""

from __future__ import annotations

from functools import partial

import numpy as np
import torch
from scipy.stats import spearmanr

from deepal import image_handler
from deepal.nets.architectures import MNIST_Net
from deepal.scores.adversarial import (
    bim_perturbation_norms,
    dataset_perturbation_norms,
    deepfool_perturbation_norms,
)

from benchmarks.measure import measure, report

SMALL = {"n": 500}
FULL = {"n": 4_000}
BATCH = 1000
MEAN, STD = 0.1307, 0.3081


def _attack(name: str):
    if name == "deepfool":
        return partial(deepfool_perturbation_norms, max_iter=50)
    return partial(bim_perturbation_norms, eps=0.05, max_iter=100)


def setup(size: dict):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (size["n"], 1, 28, 28), dtype=torch.uint8, generator=g)
    torch.manual_seed(0)
    model = MNIST_Net().eval()  # fixed random init, seed 0 (not trained)
    return image_handler((MEAN,), (STD,))(x), model, size["attack"]


def deepal(inputs):
    data, model, attack = inputs
    return dataset_perturbation_norms(model, data, _attack(attack), BATCH, "cpu")[0].numpy()


def per_example(inputs):
    """The original's way: attack each example on its own (the same attack, a batch of one)."""
    data, model, attack = inputs
    fn, bounds = _attack(attack), data.input_bounds()
    scores = [fn(model, data.get_batch(torch.tensor([i]))[0], bounds=bounds)[0]
              for i in range(len(data))]
    return torch.cat(scores).numpy()


def agreement(a: np.ndarray, b: np.ndarray) -> list[str]:
    finite = np.isfinite(a) & np.isfinite(b)
    rho = spearmanr(a[finite], b[finite]).statistic if finite.sum() > 1 else float("nan")
    k = max(1, len(a) // 10)
    low_a = set(np.argsort(a, kind="stable")[:k])
    low_b = set(np.argsort(b, kind="stable")[:k])
    return [f"finite scores: deepal {np.isfinite(a).sum()}, per-example {np.isfinite(b).sum()} "
            f"of {len(a)}; same +inf set: {bool((np.isinf(a) == np.isinf(b)).all())}",
            f"Spearman on finite scores: {rho:.4f}; bottom-{k} overlap: "
            f"{len(low_a & low_b) / k:.3f}"]


def run(full: bool) -> None:
    base = FULL if full else SMALL
    for attack in ("deepfool", "bim"):
        size = {**base, "attack": attack}
        d = measure(__name__, "deepal", size)
        r = measure(__name__, "per_example", size)
        ratio = r.seconds / d.seconds
        params = "max_iter 50" if attack == "deepfool" else "eps 0.05, max_iter 100"
        report(f"adversarial/{attack}: {base['n']:,} random MNIST-shaped inputs, {params}, "
               f"MNIST_Net fixed random init (seed 0), batch {BATCH}", d, r,
               agreement(d.result, r.result)
               + [f"target >= 50x: {'met' if ratio >= 50 else 'MISSED'}"],
               ref_label="per-example loop")
