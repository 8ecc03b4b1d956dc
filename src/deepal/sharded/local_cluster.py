"""A multi-node Ray cluster on this machine (127.0.0.1), for tests and benchmarks.

Every node is a ``ray start --block`` process leading its own session, so the cluster's
processes are found by session and killed at the end without touching any other Ray on the
machine (``ray stop`` would stop every Ray of this user). Linux only (it reads ``/proc``).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def session_pids(session: int) -> list[int]:
    """Live (not zombie) processes of ``session``, read from ``/proc``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) == session:
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    pids.append(int(entry.name))
        except (OSError, ProcessLookupError):
            continue
    return pids


class LocalCluster:
    """A head and ``n_workers`` worker nodes, each with its own custom resource
    ``node<i>`` (the head is ``node0``) so shards can be placed node by node.

    Parameters
    ----------
    temp_dir:
        Ray's folder for this cluster (keep its path short: Ray's socket paths live in it).
    n_workers:
        Worker nodes besides the head.
    cpus:
        CPUs each node offers.
    head_cpus:
        CPUs the head offers (default ``cpus``; 0 keeps shards off it).
    object_store:
        Bytes of each node's object store.

    Examples
    --------
    >>> cluster = LocalCluster(Path("/tmp/dsx"), n_workers=2)   # doctest: +SKIP
    >>> ray.init(address=cluster.address)                        # doctest: +SKIP
    >>> cluster.stop()                                           # doctest: +SKIP
    """

    def __init__(self, temp_dir: Path, n_workers: int = 2, cpus: int = 1,
                 head_cpus: int | None = None, object_store: int = 80 * 2**20) -> None:
        self.temp_dir = temp_dir
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.nodes: list[subprocess.Popen[bytes]] = []
        self.env = env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0",
               "RAY_AUTH_MODE": "disabled"}
        common = ["--block", "--num-gpus", "0", "--object-store-memory", str(object_store),
                  "--node-ip-address", "127.0.0.1", "--disable-usage-stats"]
        self._start([RAY, "start", "--head", "--port", str(self.port), "--temp-dir",
                     str(temp_dir), "--include-dashboard", "false", "--num-cpus",
                     str(cpus if head_cpus is None else head_cpus),
                     "--resources", '{"node0": 1}', *common], env)
        try:
            self.wait_for_nodes(1)
            for i in range(1, n_workers + 1):
                self._start([RAY, "start", "--address", self.address, "--num-cpus", str(cpus),
                             "--resources", f'{{"node{i}": 1}}', *common], env)
                # One at a time: two nodes starting together on two cores can time out.
                self.wait_for_nodes(i + 1)
        except BaseException:
            self.stop()
            raise

    def _start(self, command: list[str], env: dict[str, str]) -> None:
        # The node's log is its output; the child keeps its own copy of the descriptor.
        with open(self.temp_dir / f"node{len(self.nodes)}.log", "wb") as log:
            self.nodes.append(subprocess.Popen(command, env=env, stdout=log, stderr=log,
                                               start_new_session=True))

    def wait_for_nodes(self, count: int, limit: float = 90.0) -> None:
        """Wait until ``count`` nodes are alive (checked from a throwaway driver process)."""
        probe = ("import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR');"
                 "print(sum(n['Alive'] for n in ray.nodes()))")
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            for node in self.nodes:
                if node.poll() is not None:
                    raise RuntimeError(f"a ray node exited: see {self.temp_dir}")
            out = subprocess.run([sys.executable, "-c", probe, self.address], env=self.env,
                                 capture_output=True, text=True, timeout=limit)
            if out.returncode == 0 and out.stdout.strip().splitlines()[-1:] == [str(count)]:
                return
            time.sleep(0.5)
        raise RuntimeError(f"{count} ray nodes did not come up in {limit} s")

    def stop(self) -> None:
        """Kill every process of every node's session, then wait for them to end."""
        for node in self.nodes:
            for pid in session_pids(node.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for node in self.nodes:
            node.wait(timeout=30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(session_pids(n.pid) for n in self.nodes):
            time.sleep(0.2)
