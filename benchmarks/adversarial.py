"""Adversarial scores (DeepFool, BIM): deepal's batched attacks vs one example at a time.

The pool is MNIST from ``../shared/data`` (random MNIST-shaped images where it is absent) and
the model an MNIST CNN trained for one epoch on 10,000 other MNIST images (seed 0): attacks on
an untrained net flip after one step and say little. The references are the original DeepAL's
per-example loops written out plainly: DeepFool takes one backward pass per class per step,
BIM one per step, on a batch of one. They use the same step rules as deepal (overshoot
``epsilon``, clamping into the valid pixel range, iteration caps), so the scores must agree.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr

from deepal import Net, image_handler
from deepal.nets.architectures import MNIST_Net
from deepal.scores.adversarial import (
    bim_perturbation_norms,
    dataset_perturbation_norms,
    deepfool_perturbation_norms,
)

from benchmarks.measure import bench_device, measure, report

SMALL = {"n": 500}
FULL = {"n": 4_000}
BATCH = 1000
MEAN, STD = 0.1307, 0.3081
DEEPFOOL_ITER, DEEPFOOL_EPS = 50, 1e-4
BIM_EPS, BIM_ITER = 0.05, 100
MNIST_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"


def _images(n_pool: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n_pool`` pool images, and 10,000 training images with their labels."""
    if MNIST_DIR.is_dir():
        from deepal.data.sources.mnist import load_mnist

        splits = load_mnist(MNIST_DIR, download=False)
        x, y = splits.X_train, splits.Y_train
        return x[10_000:10_000 + n_pool], x[:10_000], y[:10_000]
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (10_000 + n_pool, 1, 28, 28), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (10_000,), generator=g)
    return x[10_000:], x[:10_000], y


def setup(size: dict):
    pool, train_x, train_y = _images(size["n"])
    handler = image_handler((MEAN,), (STD,))
    torch.manual_seed(0)
    net = Net(MNIST_Net, {"n_epoch": 1}, device=bench_device())
    net.train(handler(train_x, train_y))
    return handler(pool), net.clf.eval(), size["attack"]


def _deepal_attack(name: str, max_classes: int | None = None):
    if name == "deepfool":
        return partial(deepfool_perturbation_norms, max_iter=DEEPFOOL_ITER,
                       epsilon=DEEPFOOL_EPS, max_classes=max_classes)
    return partial(bim_perturbation_norms, eps=BIM_EPS, max_iter=BIM_ITER)


def deepal(inputs, max_classes: int | None = None):
    data, model, attack = inputs
    attack_fn = _deepal_attack(attack, max_classes)
    return dataset_perturbation_norms(model, data, attack_fn, BATCH, bench_device())[0].numpy()


def deepal_top3_classes(inputs):
    """DeepFool linearised towards the 3 likeliest classes only (``max_classes=3``)."""
    return deepal(inputs, max_classes=3)


def _deepfool_one(model, x, low, high) -> float:
    """DeepFool on one example, as the original: one backward pass per class per step."""
    eta = torch.zeros_like(x)
    inputs = (x + eta).clamp(low, high).requires_grad_(True)
    logits = model(inputs)[0][0]
    k0 = int(logits.argmax())
    for _ in range(DEEPFOOL_ITER):
        grad0 = torch.autograd.grad(logits[k0], inputs, retain_graph=True)[0]
        best, best_w, best_gap = float("inf"), None, 0.0
        for k in range(len(logits)):
            if k == k0:
                continue
            w = torch.autograd.grad(logits[k], inputs, retain_graph=True)[0] - grad0
            gap = abs(float(logits[k] - logits[k0]))
            norm = float(w.norm())
            if norm > 0 and gap / norm < best:
                best, best_w, best_gap = gap / norm, w, gap
        if best_w is None:
            break
        step = (best_gap + DEEPFOOL_EPS) / float(best_w.norm()) * best_w / best_w.norm()
        eta = (x + eta + step).clamp(low, high) - x
        inputs = (x + eta).requires_grad_(True)
        logits = model(inputs)[0][0]
        if int(logits.argmax()) != k0:
            return float((eta * eta).sum())
    return float("inf")


def _bim_one(model, x, low, high) -> float:
    """BIM on one example, as the original (with an iteration cap, which it lacked)."""
    eta = torch.zeros_like(x)
    inputs = x.clone().requires_grad_(True)
    logits = model(inputs)[0]
    y0 = logits.argmax(dim=1)
    for _ in range(BIM_ITER):
        grad = torch.autograd.grad(F.cross_entropy(logits, y0, reduction="sum"), inputs)[0]
        eta = (x + eta + BIM_EPS * grad.sign()).clamp(low, high) - x
        inputs = (x + eta).requires_grad_(True)
        logits = model(inputs)[0]
        if int(logits.argmax()) != int(y0):
            return float((eta * eta).sum())
    return float("inf")


def per_example(inputs):
    """The original's way: attack each example on its own."""
    data, model, attack = inputs
    one = _deepfool_one if attack == "deepfool" else _bim_one
    low, high = (b.to(bench_device()) for b in data.input_bounds())
    with torch.enable_grad():
        return np.array([one(model, data.get_batch(torch.tensor([i]))[0].to(bench_device()),
                             low, high) for i in range(len(data))])


def agreement(a: np.ndarray, b: np.ndarray) -> list[str]:
    finite = np.isfinite(a) & np.isfinite(b)
    rho = spearmanr(a[finite], b[finite]).statistic if finite.sum() > 1 else float("nan")
    k = max(1, len(a) // 10)
    low_a = set(np.argsort(a, kind="stable")[:k])
    low_b = set(np.argsort(b, kind="stable")[:k])
    close = np.isclose(a[finite], b[finite], rtol=1e-3).mean() if finite.any() else float("nan")
    return [f"finite scores: deepal {np.isfinite(a).sum()}, per-example {np.isfinite(b).sum()} "
            f"of {len(a)}; same +inf set: {bool((np.isinf(a) == np.isinf(b)).all())}",
            f"scores equal to 0.1%: {close:.3f}; Spearman on finite scores: {rho:.4f}; "
            f"bottom-{k} (the picks) overlap: {len(low_a & low_b) / k:.3f}"]


def run(full: bool) -> None:
    base = FULL if full else SMALL
    rows = [("deepfool", "deepal", f"max_iter {DEEPFOOL_ITER}, all classes"),
            ("deepfool", "deepal_top3_classes", f"max_iter {DEEPFOOL_ITER}, max_classes=3"),
            ("bim", "deepal", f"eps {BIM_EPS}, max_iter {BIM_ITER}")]
    references = {}
    for attack, fn, params in rows:
        size = {**base, "attack": attack}
        d = measure(__name__, fn, size)
        if attack not in references:
            references[attack] = measure(__name__, "per_example", size)
        r = references[attack]
        ratio = r.seconds / d.seconds
        report(f"adversarial/{attack}: {base['n']:,} pool images ({setup_source()}), {params}, "
               f"MNIST_Net trained 1 epoch on 10,000 images, batch {BATCH}", d, r,
               agreement(d.result, r.result)
               + [f"target >= 50x: {'met' if ratio >= 50 else 'MISSED'}"],
               ref_label="per-example loop")


def setup_source() -> str:
    return "MNIST" if MNIST_DIR.is_dir() else "random MNIST-shaped images"
