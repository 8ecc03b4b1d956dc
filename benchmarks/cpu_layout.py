"""Channels-last weights on the CPU (deepal.placement): deepal's CNNs trained as deepal places
them against the same networks kept in PyTorch's default layout, through the same Net."""

from __future__ import annotations

import numpy as np
import torch

from deepal import Data, Net
from deepal.nets.architectures import BatchBALDCNN, MNIST_Net
from deepal.nets.semi_supervised import UnlabeledPool

from benchmarks.measure import compare, report
from benchmarks.semi_supervised import setup  # noqa: F401 - the inputs compare() builds

SIZE = {"n": 10_000, "labels": 100, "steps": 20}


class DefaultLayoutMNIST(MNIST_Net):
    channels_last_on_cpu = False


class DefaultLayoutBatchBALD(BatchBALDCNN):
    channels_last_on_cpu = False


def _fixmatch(inputs, network) -> None:
    data, steps = inputs
    params = {"n_epoch": 1, "train_args": {"batch_size": 64}, "optimizer": "Adam",
              "optimizer_args": {"lr": 1e-3},
              "semi_supervised": {"method": "fixmatch", "steps_per_epoch": steps}}
    torch.manual_seed(0)
    net = Net(network, params, device="cpu", n_classes=10)
    net.unlabeled_inputs = UnlabeledPool(data)
    net.train(data.get_labeled_data()[1])


def _epoch(inputs, network) -> None:
    data, _ = inputs
    torch.manual_seed(0)
    everything = Data(data.X_train, data.Y_train, handler=data.handler, n_classes=10)
    everything.label(np.arange(data.n_pool))
    Net(network, {"n_epoch": 1, "train_args": {"batch_size": 64}}, device="cpu",
        n_classes=10).train(everything.get_labeled_data()[1])


def fixmatch_placed(inputs) -> None:
    _fixmatch(inputs, MNIST_Net)


def fixmatch_default(inputs) -> None:
    _fixmatch(inputs, DefaultLayoutMNIST)


def epoch_placed(inputs) -> None:
    _epoch(inputs, BatchBALDCNN)


def epoch_default(inputs) -> None:
    _epoch(inputs, DefaultLayoutBatchBALD)


def run(full: bool) -> None:
    size = {**SIZE, "steps": 100} if full else SIZE
    rows = (("fixmatch", f"FixMatch, {size['steps']} steps, MNIST_Net, batch 64 + 7 x 64 "
                         "unlabeled"),
            ("epoch", f"one epoch of BatchBALDCNN on {size['n']:,} 28x28 images, batch 64"))
    for prefix, what in rows:
        placed, default = compare(__name__, [f"{prefix}_placed", f"{prefix}_default"], size,
                                  repeat=3, threads=1)
        report(f"channels-last on the CPU: {what}, one thread (best of 3, run in turn)",
               placed, default,
               [f"channels-last / default layout = {placed.seconds / default.seconds:.3f}x"],
               ref_label="default layout")
