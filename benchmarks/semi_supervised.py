"""Semi-supervised training's cost per optimiser step: FixMatch and pseudo-labelling against
training on the labels alone, the same number of steps of the same network and batch."""

from __future__ import annotations

import numpy as np
import torch

from deepal import Data, Net, image_handler
from deepal.nets.architectures import MNIST_Net
from deepal.nets.semi_supervised import UnlabeledPool

from benchmarks.measure import bench_device, compare, report

SIZE = {"n": 10_000, "labels": 100, "steps": 20}
MEAN, STD = 0.1307, 0.3081


def setup(size: dict):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (size["n"], 1, 28, 28), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (size["n"],), generator=g).numpy()
    data = Data(x, y, handler=image_handler((MEAN,), (STD,)), n_classes=10)
    data.label(np.arange(size["labels"]))
    return data, size["steps"]


def _train(inputs, semi: dict | None) -> None:
    data, steps = inputs
    params = {"n_epoch": 1, "train_args": {"batch_size": 64}, "optimizer": "Adam",
              "optimizer_args": {"lr": 1e-3}}
    # The same number of steps: labels repeated to ``steps`` batches, or the option's epoch.
    params.update({"epoch_samples": 64 * steps} if semi is None else
                  {"semi_supervised": {**semi, "steps_per_epoch": steps}})
    torch.manual_seed(0)
    net = Net(MNIST_Net, params, device=bench_device(), n_classes=10)
    net.unlabeled_inputs = UnlabeledPool(data)
    net.train(data.get_labeled_data()[1])


def labels_only(inputs) -> None:
    _train(inputs, None)


def pseudo_label(inputs) -> None:
    _train(inputs, {"method": "pseudo_label"})


def fixmatch(inputs) -> None:
    _train(inputs, {"method": "fixmatch"})


def run(full: bool) -> None:
    size = {**SIZE, "steps": 100} if full else SIZE
    fix, pseudo, plain = compare(__name__, ["fixmatch", "pseudo_label", "labels_only"], size,
                                 repeat=3)
    report(f"semi-supervised (deepal: FixMatch): {size['steps']} steps, batch 64 + 7 x 64 "
           f"unlabeled, MNIST_Net, {size['labels']} labels of {size['n']:,} 28x28 images "
           "(best of 3, run in turn)",
           fix, plain, [
               f"FixMatch / labels only = {fix.seconds / plain.seconds:.1f}x per step",
               f"pseudo_label / labels only = {pseudo.seconds / plain.seconds:.1f}x per step "
               f"({pseudo.seconds:.3f} s)",
           ], ref_label="labels only")
