"""What a run is (:class:`RunSpec`) and the progress events runs send while they go."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from deepal.config.experiment import ExperimentConfig
from deepal.experiments.store import run_id

#: A progress event: ``{"event": "start" | "round" | "done", "run": RUN_ID, ...}``. A
#: ``"start"`` has ``round`` (where the run starts), ``n_round``, ``n_pool``, ``n_test``,
#: ``device``, ``threads`` and ``strategy_class``; a ``"round"`` has ``round``, ``n_round``,
#: ``n_labeled``, ``test_accuracy``, ``train_seconds`` and ``query_seconds``; a ``"done"``
#: has ``rounds``, and ``skipped`` when the run was already complete.
Event = dict[str, Any]
Emit = Callable[[Event], None]


@dataclass(frozen=True)
class RunSpec:
    """One run of an experiment and where it writes.

    Attributes
    ----------
    threads:
        Torch threads of the run: the config's ``[resources] cpus_per_run``.
    progress:
        Show the network's training progress bars (``deepal run`` without ``--quiet``).

    Examples
    --------
    >>> from deepal.experiments.config import parse_config
    >>> config = parse_config({"datasets": "digits", "strategies": "RandomSampling",
    ...                        "seeds": [1], "loop": {"n_init_labeled": 10, "n_query": 5,
    ...                                               "n_round": 1}})
    >>> RunSpec("digits", "RandomSampling", 1, config, "out").id
    'digits-RandomSampling-seed1'
    """

    dataset: str
    strategy: str
    seed: int
    config: ExperimentConfig
    output: str
    threads: int = 1
    progress: bool = False

    @property
    def id(self) -> str:
        return run_id(self.dataset, self.strategy, self.seed)
