"""One training epoch: deepal.Net.train vs a bare PyTorch loop (same model, batch, optimiser,
and the same weight layout, so that the ratio is the loop's overhead alone)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from deepal import Net, image_handler
from deepal.nets.architectures import MNIST_Net
from deepal.placement import placed

from benchmarks.measure import bench_device, compare, report

SIZE = {"n": 10_000}
PARAMS = {"n_epoch": 1, "train_args": {"batch_size": 64},
          "optimizer_args": {"lr": 0.01, "momentum": 0.5}}
MEAN, STD = 0.1307, 0.3081


def setup(size: dict):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (size["n"], 1, 28, 28), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (size["n"],), generator=g)
    # The bare loop gets pre-normalised floats, already on the device.
    return x, y, ((x.float() / 255.0 - MEAN) / STD).to(bench_device()), y.to(bench_device())


def deepal(inputs):
    x, y, _, _ = inputs
    torch.manual_seed(0)
    Net(MNIST_Net, PARAMS, device=bench_device()).train(image_handler((MEAN,), (STD,))(x, y))


def bare_loop(inputs):
    _, _, xf, y = inputs
    torch.manual_seed(0)
    model = placed(MNIST_Net(), bench_device())
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.5)
    order = torch.randperm(len(xf)).to(bench_device())
    for start in range(0, len(xf), 64):
        idx = order[start:start + 64]
        optimizer.zero_grad()
        logits, _ = model(xf[idx])
        F.cross_entropy(logits, y[idx]).backward()
        optimizer.step()


def run(full: bool) -> None:
    d, r = compare(__name__, ["deepal", "bare_loop"], SIZE, repeat=5)
    slow = d.seconds / r.seconds
    report("train-epoch: 1 epoch, 10,000 uint8 28x28 images, batch 64, SGD "
           "(best of 5, run in turn)", d, r, [
        f"deepal / bare = {slow:.3f}x; target <= 1.1x: {'met' if slow <= 1.1 else 'MISSED'}",
    ], ref_label="bare PyTorch loop")
