"""Reading an experiment's configuration: a TOML file checked by the models of
:mod:`deepal.config.experiment` before any run starts, its settings hash, and its smoke
version."""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deepal.config.base import ConfigError, validated
from deepal.config.experiment import (
    DataSettings,
    ExperimentConfig,
    LoopSettings,
    ResourceSettings,
)
from deepal.config.pretraining import SELF_SUPERVISED, PretrainingSettings
from deepal.config.sharding import QuerySettings
from deepal.config.training import TrainingSettings
from deepal.errors import first_line

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["ConfigError", "ExperimentConfig", "load_config", "parse_config", "settings_hash",
           "smoke_config"]

#: The tables of a config file and the model that checks each.
TABLES: dict[str, type[Any]] = {"loop": LoopSettings, "data": DataSettings,
                                "training": TrainingSettings, "resources": ResourceSettings,
                                "pretraining": PretrainingSettings,
                                "query": QuerySettings}


def settings_hash(settings: dict[str, Any]) -> str:
    """A short stable fingerprint of ``settings`` (JSON with sorted keys)."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and check an experiment's TOML file (see ``examples/digits.toml``).

    Raises
    ------
    ConfigError
        The file is missing, is not TOML, has an unknown key or an impossible value.

    Examples
    --------
    >>> config = load_config("examples/digits.toml")  # doctest: +SKIP
    >>> config.strategies                               # doctest: +SKIP
    ('RandomSampling', 'MarginSampling', 'EntropySampling')
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        raw = tomllib.loads(path.read_bytes().decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None
    except (RecursionError, ValueError) as error:  # nested too deep; an integer too long
        reason = first_line(error)[:120]
        raise ConfigError(f"{path} is not a config deepal can read ({reason})") from None
    return parse_config(raw, default_name=path.stem)


def parse_config(raw: Mapping[str, Any], default_name: str = "experiment",
                 names: Mapping[str, str] | None = None) -> ExperimentConfig:
    """An :class:`ExperimentConfig` from the parsed TOML tables ``raw``, every value checked
    (each table by its model, so an error names ``[table] key``); ``names`` renames keys in
    error messages (see :func:`~deepal.config.validated`). Names of data sets, strategies
    and networks are checked with the runs (:mod:`deepal.experiments.preflight`), which
    import them.

    Examples
    --------
    >>> config = parse_config({"datasets": ["digits"], "strategies": ["RandomSampling"],
    ...                        "seeds": [1], "loop": {"n_init_labeled": 40, "n_query": 20,
    ...                                               "budget": 90}})
    >>> config.query_sizes()
    [20, 20, 10]
    """
    tables = {key: validated(model, raw[key], f"[{key}]", names)
              for key, model in TABLES.items() if key in raw}
    if "loop" not in raw:
        raise ConfigError("the config needs a [loop] table with n_init_labeled, n_query and "
                          "n_round or budget")
    return validated(ExperimentConfig, {"name": default_name, **raw, **tables}, "", names)


def smoke_config(config: ExperimentConfig, n_round: int = 2, n_pool: int | None = 3000,
                 epochs: int = 1, n_seeds: int = 1, max_candidates: int = 200
                 ) -> ExperimentConfig:
    """A tiny version of ``config`` to check it end to end in seconds: its first ``n_seeds``
    seeds, ``n_round`` rounds, the first ``n_pool`` training examples (``None``: all), at
    most ``epochs`` epochs, at most ``max_candidates`` (or ``n_query`` if more) scored per
    query, at most 4 MC-dropout
    samples (test included) and 1,000 BatchBALD configurations, and a name ending in
    ``-smoke``, and at most ``epochs`` epochs of self-supervised pretraining where it is
    used. Everything else (networks, strategies, validation, initial labels) is
    unchanged."""
    if n_round < 1 or n_seeds < 1 or epochs < 1:
        raise ConfigError("a smoke test needs n_round, n_seeds and epochs >= 1")
    caps = {"n_drop": 4, "n_configurations": 1000, "max_candidates": max_candidates}
    options = {name: {key: min(value, caps[key]) if key in caps else value
                      for key, value in opts.items()}
               for name, opts in config.strategy_options.items()}
    loop = config.loop
    rounds = min(n_round, config.n_round)
    pool = config.data.n_pool
    return config.replaced(
        name=f"{config.name}-smoke", seeds=config.seeds[:n_seeds], output=None,
        strategy_options=options,
        loop={"n_round": None,
              "budget": min(config.budget, loop.n_init_labeled + rounds * loop.n_query),
              # never below a query: a query cannot pick more examples than it scores
              "max_candidates": max(loop.n_query, min(loop.max_candidates or max_candidates,
                                                      max_candidates)),
              "test_mc_samples": None if loop.test_mc_samples is None
              else min(loop.test_mc_samples, caps["n_drop"])},
        data={"n_pool": n_pool if pool is None or n_pool is None else min(n_pool, pool)},
        training={"epochs": min(config.training.epochs or epochs, epochs)},
        pretraining=_smoke_pretraining(config, epochs),
    )


def _smoke_pretraining(config: ExperimentConfig, epochs: int) -> dict[str, Any] | None:
    """The ``[pretraining]`` table with at most ``epochs`` epochs, where pretraining is
    used (``None`` where it is not)."""
    asked = any(opts.get("features") == SELF_SUPERVISED
                for opts in config.strategy_options.values())
    if config.pretraining is None and not asked:
        return None
    settings = config.pretraining or PretrainingSettings()
    return {**settings.model_dump(), "epochs": min(settings.epochs, epochs)}
