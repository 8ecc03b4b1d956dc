"""BatchBALD's consistent MC dropout on its MNIST CNN: deepal's all-samples-at-once forward
(``BatchBALDCNN.forward_consistent``) vs one bare forward pass per mask."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from deepal import Net, image_handler
from deepal.nets.architectures import BatchBALDCNN

from benchmarks.measure import bench_device, compare, report

SMALL = {"n": 2_000}
FULL = {"n": 10_000}
N_DROP, BATCH, SEED = 100, 1000, 7
MEAN, STD = 0.1307, 0.3081


def setup(size: dict):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (size["n"], 1, 28, 28), dtype=torch.uint8, generator=g)
    torch.manual_seed(0)
    model = BatchBALDCNN().eval()  # fixed random init: the cost does not depend on the weights
    return x, ((x.float() / 255.0 - MEAN) / STD).to(bench_device()), model.to(bench_device())


def deepal(inputs):
    x, _, model = inputs
    net = Net(BatchBALDCNN, {"test_args": {"batch_size": BATCH}}, device=bench_device())
    net.clf = model
    data = image_handler((MEAN,), (STD,))(x)
    return torch.cat(list(net.predict_prob_dropout_batches(data, N_DROP, seed=SEED)), dim=1)


def bare_reference(inputs):
    """N_DROP passes over the pool, pass k with mask k of each dropout layer (drawn as deepal
    draws them, so the probabilities are the same)."""
    _, xf, m = inputs
    g = torch.Generator().manual_seed(SEED)
    masks = [torch.empty(shape).bernoulli_(0.5, generator=g).mul_(2).to(xf.device)
             for shape in ((N_DROP, 32, 1, 1), (N_DROP, 64, 1, 1), (N_DROP, 128))]
    with torch.no_grad():
        parts = []
        for s in range(0, len(xf), BATCH):
            h = F.relu(F.max_pool2d(m.conv1(xf[s:s + BATCH]), 2))
            samples = []
            for k in range(N_DROP):
                z = F.relu(F.max_pool2d(m.conv2(h * masks[0][k]), 2)) * masks[1][k]
                samples.append(F.softmax(m.fc2(F.relu(m.fc1(z.flatten(1))) * masks[2][k]), 1))
            parts.append(torch.stack(samples).cpu())
        return torch.cat(parts, dim=1)


def run(full: bool) -> None:
    size = FULL if full else SMALL
    d, r = compare(__name__, ["deepal", "bare_reference"], size, repeat=3)
    fast = r.seconds / d.seconds
    difference = float((d.result - r.result).abs().max())
    report(f"consistent-dropout: BatchBALD CNN, {N_DROP} consistent masks over {size['n']:,} "
           f"MNIST-shaped inputs, batch {BATCH} (best of 3, run in turn)", d, r, [
        f"bare / deepal = {fast:.2f}x; target >= 3x: {'met' if fast >= 3 else 'MISSED'}",
        f"largest difference of a probability: {difference:.1e} (same masks, float rounding)",
    ], ref_label="bare forward passes")
