"""An experiment's settings: data sets x strategies x seeds, the loop's budget, the data, the
training and the resources of each run, as the TOML file's tables give them."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import model_validator

from deepal.config.base import Settings, validated
from deepal.config.fields import (
    Name,
    Names,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveInt,
    Seeds,
    one_of,
)
from deepal.config.pretraining import SELF_SUPERVISED, PretrainingSettings
from deepal.config.sharding import QuerySettings
from deepal.config.training import TrainingSettings

#: How the initial labels are drawn: uniformly, or the same number from each class.
INITIAL = ("random", "balanced")

#: Training options added after results were published: left out of a run's settings while
#: at these defaults, so that those results keep resuming.
_LATER_TRAINING_OPTIONS = (("validation_size", 0), ("weight_decay_per_example", None),
                           ("weight_decay_params", None), ("monitor", "loss"),
                           ("epoch_samples", None), ("test_batch_size", None),
                           ("semi_supervised", None), ("warm_start_epochs", None))


class LoopSettings(Settings):
    """``[loop]``: the initial labels, then ``n_query`` examples per round for ``n_round``
    rounds or until ``budget`` labels (initial ones included); a budget that is not a
    multiple of ``n_query`` ends with a smaller round. Exactly one of ``n_round`` and
    ``budget`` is given; the other is derived from it.

    Examples
    --------
    >>> LoopSettings(n_init_labeled=100, n_query=50, budget=225).rounds
    3
    """

    n_init_labeled: NonNegativeInt
    n_query: PositiveInt
    n_round: NonNegativeInt | None = None
    budget: int | None = None
    max_candidates: PositiveInt | None = None
    initial: Annotated[str, one_of(INITIAL, "initial")] = "random"
    test_mc_samples: PositiveInt | None = None

    @model_validator(mode="after")
    def _consistent(self) -> LoopSettings:
        if (self.n_round is None) == (self.budget is None):
            raise ValueError("needs exactly one of n_round (rounds of querying) and budget "
                             "(labels at the end, initial ones included)")
        if self.budget is not None and self.budget < self.n_init_labeled:
            raise ValueError(f"budget = {self.budget} must be at least n_init_labeled = "
                             f"{self.n_init_labeled}"
                             + (" (it is negative)" if self.budget < 0 else ""))
        if self.max_candidates is not None and self.max_candidates < self.n_query:
            raise ValueError(f"max_candidates = {self.max_candidates} is below n_query = "
                             f"{self.n_query}: a query cannot pick more examples than it scores")
        return self

    @property
    def labels(self) -> int:
        """Labels at the end, initial ones included."""
        if self.budget is not None:
            return self.budget
        return self.n_init_labeled + self.n_query * (self.n_round or 0)

    @property
    def rounds(self) -> int:
        """Rounds of querying."""
        return math.ceil((self.labels - self.n_init_labeled) / self.n_query)


class DataSettings(Settings):
    """``[data]``: where the data sets' files are, and how much of each pool is used."""

    data_dir: str | None = None
    n_pool: PositiveInt | None = None


class ResourceSettings(Settings):
    """``[resources]``: what one run may use. ``cpus_per_run`` is also its torch threads
    (rounded, at least 1)."""

    cpus_per_run: NonNegativeFloat = 1.0
    gpus_per_run: NonNegativeFloat = 0.0

    @property
    def threads(self) -> int:
        return max(1, round(self.cpus_per_run))


class ExperimentConfig(Settings):
    """A whole experiment: every combination of ``datasets`` x ``strategies`` x ``seeds`` is a
    run of the active learning loop with the same ``loop``, ``data`` and ``training``.

    Test accuracy is that of the trained network, or with ``[loop] test_mc_samples``, of the
    mean of that many MC-dropout samples (as Kirsch et al., 2019 report it). ``[query]``
    (:class:`~deepal.config.sharding.QuerySettings`) says where each run's queries are
    computed; it changes no pick, so it is not part of a run's settings.

    Examples
    --------
    >>> config = ExperimentConfig(name="demo", datasets=("digits",),
    ...                           strategies=("RandomSampling",), seeds=(1,),
    ...                           loop=LoopSettings(n_init_labeled=40, n_query=20, n_round=2))
    >>> config.query_sizes(), config.budget
    ([20, 20], 80)
    """

    name: Name
    datasets: Names
    strategies: Names
    seeds: Seeds
    loop: LoopSettings
    data: DataSettings = DataSettings()
    training: TrainingSettings = TrainingSettings()
    strategy_options: dict[str, dict[str, Any]] = {}
    resources: ResourceSettings = ResourceSettings()
    pretraining: PretrainingSettings | None = None
    query: QuerySettings = QuerySettings()
    target_accuracy: float | None = None
    output: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentConfig:
        for name in self.strategy_options:
            if name not in self.strategies:
                raise ValueError(f"[strategy_options.{name}] names no strategy of this "
                                 f"experiment ({', '.join(self.strategies)})")
        if self.target_accuracy is not None and not 0 < self.target_accuracy <= 1:
            raise ValueError(f"target_accuracy must be in (0, 1], got {self.target_accuracy}")
        _check_pretraining(self)
        return self

    def replaced(self, **changes: Any) -> ExperimentConfig:
        """A copy with ``changes``, checked again: a top-level key's new value, or for a
        table (``loop``, ``data``, ``training``, ``resources``, ``query``) a dict of the keys
        that change.

        Examples
        --------
        >>> config = ExperimentConfig(name="demo", datasets=("digits",),
        ...                           strategies=("RandomSampling",), seeds=(1, 2),
        ...                           loop=LoopSettings(n_init_labeled=40, n_query=20, n_round=2))
        >>> config.replaced(seeds=(1,), loop={"n_round": None, "budget": 50}).query_sizes()
        [10]
        """
        raw = self.model_dump()
        for key, value in changes.items():
            table = isinstance(getattr(self, key, None), Settings) and isinstance(value, dict)
            raw[key] = {**raw[key], **value} if table else value
        return validated(ExperimentConfig, raw)

    @property
    def n_round(self) -> int:
        """Rounds of querying of every run."""
        return self.loop.rounds

    @property
    def budget(self) -> int:
        """Labels at the end of every run, initial ones included."""
        return self.loop.labels

    def query_sizes(self) -> list[int]:
        """Examples queried at rounds 1..n: ``n_query`` each, the last one possibly smaller so
        the labels end exactly at ``budget``."""
        full, rest = divmod(self.budget - self.loop.n_init_labeled, self.loop.n_query)
        return [self.loop.n_query] * full + ([rest] if rest else [])

    def to_dict(self) -> dict[str, Any]:
        """The settings as one flat table (the manifest's ``config``): the loop's, data's
        and resources' keys at the top, ``training`` nested."""
        return {
            "name": self.name, "datasets": self.datasets, "strategies": self.strategies,
            "seeds": self.seeds, "n_init_labeled": self.loop.n_init_labeled,
            "n_query": self.loop.n_query, "n_round": self.n_round, "budget": self.budget,
            **self.data.model_dump(), "max_candidates": self.loop.max_candidates,
            "test_mc_samples": self.loop.test_mc_samples,
            "strategy_options": {k: dict(v) for k, v in self.strategy_options.items()},
            "training": self.training.model_dump(), "target_accuracy": self.target_accuracy,
            "output": self.output, **self.resources.model_dump(), "initial": self.loop.initial,
            "pretraining": None if self.pretraining is None else self.pretraining.model_dump(),
            "query": self.query.model_dump(),
        }

    def run_settings(self, strategy: str | None = None) -> dict[str, Any]:
        """What decides a run's results, besides its data set, strategy and seed (so a resumed
        run must have the same): everything but the lists of runs, paths, device, resources
        and where queries run. With ``strategy``, of the strategies' options only that one's
        count: adding another strategy with its options to an experiment leaves the earlier
        runs resumable."""
        settings = self.to_dict()
        if strategy is not None:
            own = settings["strategy_options"].get(strategy)
            settings["strategy_options"] = {} if own is None else {strategy: own}
        for key in ("name", "datasets", "strategies", "seeds", "data_dir", "output",
                    "target_accuracy", "cpus_per_run", "gpus_per_run", "query"):
            settings.pop(key)
        settings["training"].pop("device")
        for key, default in _LATER_TRAINING_OPTIONS:
            if settings["training"][key] == default:
                settings["training"].pop(key)
        if settings["initial"] == "random":
            settings.pop("initial")
        if settings["test_mc_samples"] is None:
            settings.pop("test_mc_samples")
        if settings["pretraining"] is None:  # added later: older runs keep resuming
            settings.pop("pretraining")
        else:  # where the cache lives does not change the results
            settings["pretraining"].pop("cache_dir")
        return settings


def _check_pretraining(config: ExperimentConfig) -> None:
    """``features`` options ask for the self-supervised features (a config cannot give an
    array), and a ``[pretraining]`` table is used by something."""
    asking = []
    for name, options in config.strategy_options.items():
        if "features" in options:
            if options["features"] != SELF_SUPERVISED:
                raise ValueError(f"[strategy_options.{name}] features = "
                                 f"{options['features']!r}: a config can only ask for "
                                 f"features = \"{SELF_SUPERVISED}\" (pretrained on the pool)")
            asking.append(name)
    settings = config.pretraining
    if settings is None:
        return
    if not asking and not settings.init_classifier:
        raise ValueError(f"[pretraining] is used by nothing: set features = "
                         f"\"{SELF_SUPERVISED}\" in a strategy's options (TypiClust, "
                         "ProbCover) or init_classifier = true, or remove the table")
    if settings.init_classifier and settings.net not in (None, config.training.net):
        raise ValueError(f"[pretraining] init_classifier starts the classifier from the "
                         f"pretrained weights, so net = {settings.net!r} must be the "
                         f"classifier's ([training] net = {config.training.net!r}): remove "
                         "[pretraining] net")
