"""Time one call and measure its peak extra memory, each call in a fresh spawned process.

A row module defines ``setup(size) -> inputs`` and one function per implementation,
``fn(inputs) -> result``. :func:`measure` spawns a new Python process, builds the inputs there
(untimed), then times ``fn(inputs)`` with ``time.perf_counter`` and reads the process's peak RSS.
Peak extra memory = peak RSS during the call minus RSS (``VmRSS``) just before it. The peak is
the kernel's high-water mark ``VmHWM`` (the counter ``ru_maxrss`` reports), reset through
``/proc/self/clear_refs`` after setup so that the setup's own peak does not count; where that
reset is not allowed, ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` is used instead.
"""

from __future__ import annotations

import gc
import importlib
import multiprocessing as mp
import os
import resource
import time
from dataclasses import dataclass
from typing import Any

MEMORY_METHOD = (
    "memory = peak RSS of a fresh spawned process during the call minus its VmRSS just before "
    "(peak: VmHWM reset via /proc/self/clear_refs after setup; else ru_maxrss)"
)


def bench_device() -> str:
    """Where the rows run: ``python -m benchmarks --device cuda`` sets it, through the
    environment, for every spawned process."""
    return os.environ.get("DEEPAL_BENCH_DEVICE", "cpu")


def synchronize() -> None:
    """Wait for queued GPU work, so that a timer read after it counts that work."""
    if bench_device().startswith("cuda"):
        import torch

        torch.cuda.synchronize()


@dataclass
class Measurement:
    seconds: float  # best of the repeats
    peak_extra_bytes: int
    result: Any
    peak_source: str
    gpu_peak_extra_bytes: int | None = None  # on CUDA: torch's peak allocation minus before


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
        return True
    except OSError:
        return False


def _child(module_name: str, fn_name: str, size: dict, repeat: int, threads: int):
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    on_gpu = bench_device().startswith("cuda")
    if on_gpu:  # CUDA's context, created before the peak is reset, is not charged to the call
        torch.zeros(1, device=bench_device())
    module = importlib.import_module(module_name)
    inputs = module.setup(size)
    fn = getattr(module, fn_name)
    # Warm up the BLAS and thread pools, so their one-off buffers are not charged to the call.
    torch.ones(256, 256) @ torch.ones(256, 256)
    np.ones((256, 256)) @ np.ones((256, 256))
    gc.collect()
    if on_gpu:
        synchronize()
        torch.cuda.reset_peak_memory_stats()
        gpu_before = torch.cuda.memory_allocated()
    reset = _reset_peak()
    before_kb = _status_kb("VmRSS")
    times, result = [], None
    for _ in range(repeat):
        result = None
        start = time.perf_counter()
        result = fn(inputs)
        synchronize()
        times.append(time.perf_counter() - start)
    if reset:
        peak_kb, source = _status_kb("VmHWM"), "VmHWM"
    else:
        peak_kb, source = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "ru_maxrss"
    gpu_peak = torch.cuda.max_memory_allocated() - gpu_before if on_gpu else None
    return Measurement(min(times), max(0, peak_kb - before_kb) * 1024, result, source, gpu_peak)


def _alternating_child(module_name: str, fn_names: list[str], size: dict, repeat: int,
                       threads: int) -> dict[str, float]:
    import torch

    torch.set_num_threads(threads)
    module = importlib.import_module(module_name)
    inputs = module.setup(size)
    fns = [getattr(module, name) for name in fn_names]
    for fn in fns:  # warm-up, untimed (also CUDA's one-off kernel loading)
        fn(inputs)
    synchronize()
    best = {name: float("inf") for name in fn_names}
    for _ in range(repeat):
        for name, fn in zip(fn_names, fns, strict=True):
            start = time.perf_counter()
            fn(inputs)
            synchronize()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def _in_fresh_process(target, *args):
    pool = mp.get_context("spawn").Pool(1)
    try:
        return pool.apply(target, args)
    finally:
        pool.close()
        pool.join()


def measure(module_name: str, fn_name: str, size: dict, repeat: int = 1,
            threads: int = 2) -> Measurement:
    """``module.fn(module.setup(size))`` in a fresh spawned process: time and peak memory."""
    return _in_fresh_process(_child, module_name, fn_name, size, repeat, threads)


def compare(module_name: str, fn_names: list[str], size: dict, repeat: int = 5,
            threads: int = 2) -> list[Measurement]:
    """Measure implementations whose times must be compared closely (a ratio near 1).

    Times: all of them in one fresh process, run in turn ``repeat`` times after a warm-up,
    each one's best kept, so that a burst of load elsewhere on a shared machine hits them
    alike. Peak memory: one run of each in its own fresh process, as :func:`measure`."""
    times = _in_fresh_process(_alternating_child, module_name, fn_names, size, repeat, threads)
    results = []
    for name in fn_names:
        single = measure(module_name, name, size, 1, threads)
        results.append(Measurement(times[name], single.peak_extra_bytes, single.result,
                                   single.peak_source, single.gpu_peak_extra_bytes))
    return results


def report(name: str, deepal: Measurement | None, reference: Measurement | None,
           notes: list[str] = (), ref_label: str = "reference") -> None:
    """Print one row: deepal, the reference, the time ratio, and any notes."""
    print(f"\n== {name}")
    gpu = any(m is not None and m.gpu_peak_extra_bytes is not None for m in (deepal, reference))
    print(f"  {'impl':<24}{'time [s]':>12}{'peak extra [MB]':>18}"
          + (f"{'GPU peak extra [MB]':>22}" if gpu else ""))
    for label, m in (("deepal", deepal), (ref_label, reference)):
        if m is not None:
            gpu_mb = ("" if m.gpu_peak_extra_bytes is None
                      else f"{m.gpu_peak_extra_bytes / 2**20:>22.1f}")
            print(f"  {label:<24}{m.seconds:>12.3f}{m.peak_extra_bytes / 2**20:>18.1f}{gpu_mb}")
    if deepal is not None and reference is not None:
        print(f"  ratio (reference time / deepal time): {reference.seconds / deepal.seconds:.2f}x")
    sources = {m.peak_source for m in (deepal, reference) if m is not None}
    print(f"  (peak memory read from {', '.join(sorted(sources))})")
    for note in notes:
        print(f"  {note}")
