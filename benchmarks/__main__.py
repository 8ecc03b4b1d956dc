"""``python -m benchmarks [--full] [--only NAME[,NAME]] [--skip-dense] [--device cuda]``"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from benchmarks import (
    adversarial,
    batchbald_accuracy,
    consistent_dropout,
    cpu_layout,
    kcenter,
    kmeans,
    mc_dropout,
    semi_supervised,
    shifted,
    threads,
    train_epoch,
)
from benchmarks.measure import MEMORY_METHOD

ROWS = {
    "kcenter": lambda a: kcenter.run(a.full, a.skip_dense),
    "kcenter-1m": lambda a: kcenter.run_1m(),  # --full only
    "kmeans": lambda a: kmeans.run(a.full),
    "train-epoch": lambda a: train_epoch.run(a.full),
    "mc-dropout": lambda a: mc_dropout.run(a.full),
    "consistent-dropout": lambda a: consistent_dropout.run(a.full),
    "adversarial": lambda a: adversarial.run(a.full),
    "threads": lambda a: threads.run(a.full),
    "batchbald-accuracy": lambda a: batchbald_accuracy.run(a.full),
    "shifted": lambda a: shifted.run(a.full),
    "semi-supervised": lambda a: semi_supervised.run(a.full),
    "cpu-layout": lambda a: cpu_layout.run(a.full),
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--full", action="store_true", help="the large sizes")
    parser.add_argument("--only", help=f"comma-separated rows of: {', '.join(ROWS)}")
    parser.add_argument("--skip-dense", action="store_true",
                        help="kcenter --full: print the published dense numbers instead")
    parser.add_argument("--device", default="cpu",
                        help="run deepal and the torch references on this device (e.g. cuda); "
                             "numpy and scikit-learn references stay on the CPU")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available on this machine")
    os.environ["DEEPAL_BENCH_DEVICE"] = args.device  # read by every spawned measurement
    names = args.only.split(",") if args.only else [n for n in ROWS
                                                    if args.full or n != "kcenter-1m"]
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        parser.error(f"unknown rows {unknown}: choose from {list(ROWS)}")
    print(f"deepal benchmarks ({'full' if args.full else 'default'} sizes); torch "
          f"{torch.__version__}, 2 threads per process, "
          f"{platform.processor() or platform.machine()}, device {args.device}"
          + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else ""))
    print(MEMORY_METHOD)
    for name in names:
        if name == "kcenter-1m" and not args.full:
            print("\n== kcenter-1m: only with --full, skipped")
            continue
        start = time.perf_counter()
        ROWS[name](args)
        print(f"  (row took {time.perf_counter() - start:.0f} s in all)")


if __name__ == "__main__":
    main()
