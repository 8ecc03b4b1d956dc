"""BALD's MC dropout: deepal's batched samples + streaming reduction vs bare forward passes."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from deepal import Net, image_handler
from deepal.nets.architectures import MNIST_Net
from deepal.scores.uncertainty import bald_from_batches

from benchmarks.measure import bench_device, compare, report

SMALL = {"n": 10_000}
FULL = {"n": 40_000}
N_DROP, BATCH = 10, 1000
MEAN, STD = 0.1307, 0.3081


def setup(size: dict):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (size["n"], 1, 28, 28), dtype=torch.uint8, generator=g)
    torch.manual_seed(0)
    model = MNIST_Net()  # fixed random init (seed 0): the cost does not depend on the weights
    # The bare passes get pre-normalised floats, already on the device.
    return x, ((x.float() / 255.0 - MEAN) / STD).to(bench_device()), model.to(bench_device())


def deepal(inputs):
    x, _, model = inputs
    net = Net(MNIST_Net, {"test_args": {"batch_size": BATCH}}, device=bench_device())
    net.clf = model
    torch.manual_seed(1)
    data = image_handler((MEAN,), (STD,))(x)
    _, scores = bald_from_batches(net.predict_prob_dropout_batches(data, N_DROP))
    return scores


def bare_reference(inputs):
    """N_DROP passes over the pool in train mode (dropout on) under no_grad, then BALD."""
    _, xf, model = inputs
    model.train()
    torch.manual_seed(1)
    with torch.no_grad():
        probs = torch.stack([
            torch.cat([F.softmax(model(xf[s:s + BATCH])[0], dim=1)
                       for s in range(0, len(xf), BATCH)])
            for _ in range(N_DROP)])  # (N_DROP, N, C)
        mean = probs.mean(0)
        entropy_of_mean = -(mean * torch.log(mean.clamp_min(1e-12))).sum(1)
        mean_entropy = -(probs * torch.log(probs.clamp_min(1e-12))).sum(2).mean(0)
        return (entropy_of_mean - mean_entropy).double()


def run(full: bool) -> None:
    size = FULL if full else SMALL
    d, r = compare(__name__, ["deepal", "bare_reference"], size, repeat=3)
    slow = d.seconds / r.seconds
    report(f"mc-dropout: BALD, {N_DROP} passes over {size['n']:,} MNIST-shaped inputs, "
           f"batch {BATCH} (best of 3, run in turn)", d, r, [
        f"deepal / bare = {slow:.3f}x; target <= 1.2x: {'met' if slow <= 1.2 else 'MISSED'}",
    ], ref_label="bare forward passes")
