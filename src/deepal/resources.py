"""How many CPU threads a run's torch operations use, and how much memory the machine has.

torch's default (one thread per core, idle threads spinning) collapses when the cores are
shared: on a busy 2-core machine ``deepal run`` on digits took 114 s with two threads against
14 s with one. ``python -m benchmarks --only threads`` measures it (see
``docs/performance.md``): a second thread bought nothing on an idle machine and cost 1.19x
(passive wait) to 1.51x (active wait) on a busy one. So one thread per run is deepal's
default; ``--threads`` (``[resources] cpus_per_run`` in an experiment) asks for more. The
count is recorded with every result, since float sums differ slightly with it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from deepal.errors import DeepALError

#: Threads of one run unless the user asks for another count.
DEFAULT_THREADS = 1


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch threads; the caller's count is restored afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def passive_openmp_wait() -> None:
    """Let idle OpenMP threads sleep instead of spinning (a spinning thread steals a shared
    core from the thread doing the work). Effective only before torch starts its thread
    pool, so the command line calls it first; an explicit ``OMP_WAIT_POLICY`` is kept."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def physical_memory() -> int | None:
    """This machine's memory in bytes, where the system says (POSIX), else ``None``.

    Returns
    -------
    int or None
        Bytes of physical memory.

    Examples
    --------
    >>> (physical_memory() or 1) > 0
    True
    """
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def refuse_beyond_memory(n_bytes: int, what: str, fix: str) -> None:
    """Refuse, before anything is allocated, ``what`` needing ``n_bytes`` when that is more
    than this machine's memory.

    Parameters
    ----------
    n_bytes:
        Bytes the data will take.
    what:
        The data, as the message names it (``"1000 images of 32 x 32 pixels"``).
    fix:
        What to do instead.

    Raises
    ------
    DeepALError
        The data would not fit.

    Examples
    --------
    >>> refuse_beyond_memory(1 << 20, "a small array", "use less")
    """
    memory = physical_memory()
    if memory is not None and n_bytes > memory:
        raise DeepALError(f"{what} need {n_bytes / 2**30:.1f} GiB, more than this machine's "
                          f"{memory / 2**30:.1f} GiB of memory: {fix}")
