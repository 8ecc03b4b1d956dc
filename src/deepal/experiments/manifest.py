"""An experiment's manifest: what produced its results (the config, the versions, where each
session ran and with how many threads) and how far every run got."""

from __future__ import annotations

import platform
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepal.config.experiment import ExperimentConfig
from deepal.errors import DeepALError
from deepal.experiments.config import settings_hash
from deepal.experiments.spec import Event, RunSpec
from deepal.experiments.store import MANIFEST, SESSION_KEYS, RunStore, read_manifest, sessions_of


def describe_device(name: str | None) -> str:
    """The device runs of this config use on this machine, e.g. ``"cuda (NVIDIA H200)"``."""
    from deepal.nets.net import default_device

    device = torch.device(name) if name is not None else default_device()
    if device.type == "cuda" and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def earlier_sessions(output: Path) -> list[dict[str, Any]]:
    """The sessions recorded by the manifest already in ``output`` (none if there is none)."""
    path = output / MANIFEST
    if not path.exists():
        return []
    try:
        previous = read_manifest(output)
    except (OSError, ValueError) as error:
        raise DeepALError(
            f"cannot read {path} ({error}): it records where the runs so far were made; move "
            "it aside to start a new record, or restore it"
        ) from error
    return sessions_of(previous)


def timestamp() -> str:
    """Now, as the manifest records times: local time with its UTC offset."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def manifest(config: ExperimentConfig, specs: list[RunSpec], config_text: str | None,
             started: str, earlier: list[dict[str, Any]] | None = None,
             session_id: str | None = None) -> dict[str, Any]:
    """What produced the results: the config, the versions, and every run's progress.

    ``sessions`` lists every call that ran the experiment (``earlier`` ones first), with its
    start, last update (see :func:`record_round`), versions, platform, device and torch
    threads per run, so an experiment resumed on another machine says so; the top-level
    versions are the latest session's, ``started`` the first's. ``session_id`` names this
    session among those of other processes writing into the same folder (a new one by
    default)."""
    from deepal import __version__

    runs = []
    for spec in specs:
        checkpoint = RunStore(Path(spec.output), spec.id).load()
        done = 0 if checkpoint is None else int(checkpoint["round"])
        runs.append({"id": spec.id, "dataset": spec.dataset, "strategy": spec.strategy,
                     "seed": spec.seed, "rounds_done": done, "n_round": config.n_round,
                     "complete": checkpoint is not None and done >= config.n_round})
    session = {
        "started": started, "updated": timestamp(),
        "deepal_version": __version__,
        "python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__,
        "platform": platform.platform(), "device": describe_device(config.training.device),
        "threads": config.resources.threads, "session_id": session_id or uuid.uuid4().hex[:12],
    }
    sessions = [*(earlier or []), session]
    return {
        **{key: session[key] for key in SESSION_KEYS},
        "started": sessions[0]["started"],
        "sessions": sessions,
        "config_hash": settings_hash(config.run_settings()),
        "config": config.to_dict(), "config_text": config_text,
        "runs": runs,
    }


def record_round(record: dict[str, Any], event: Event, session_id: str | None = None) -> None:
    """Bring a manifest made by :func:`manifest` up to date with a run's completed round.

    Written after every round, so that a session stopped without warning (a killed
    process, a machine taken back) still shows how far each run got and when it last
    made progress. ``session_id`` names this process's session (default: the record's last,
    as :func:`manifest` made it)."""
    for run in record["runs"]:
        if run["id"] == event["run"]:
            run["rounds_done"] = event["round"]
            run["complete"] = event["round"] >= run["n_round"]
    now = record["updated"] = timestamp()
    own = record["sessions"][-1]["session_id"] if session_id is None else session_id
    for session in record["sessions"]:
        if session.get("session_id") == own:
            session["updated"] = now
