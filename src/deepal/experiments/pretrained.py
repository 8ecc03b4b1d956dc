"""Self-supervised pretraining in an experiment: a strategy option ``features =
"self-supervised"`` becomes the pool's pretrained features, and ``[pretraining]
init_classifier`` starts every round's classifier from the pretrained weights.

Pretraining runs on the data set as loaded (validation examples included: only inputs are
read), once per data set and settings, whatever the seed; each run takes its pool's rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from deepal.config.experiment import ExperimentConfig
from deepal.config.pretraining import SELF_SUPERVISED, PretrainingSettings
from deepal.pretraining.pretrain import Pretrained, pretrain_module


def wants_features(options: Mapping[str, Any]) -> bool:
    """Whether a strategy's options ask for the self-supervised features."""
    return bool(options.get("features") == SELF_SUPERVISED)


def uses_pretraining(config: ExperimentConfig) -> bool:
    """Whether any run of ``config`` needs the pretrained features or weights."""
    settings = config.pretraining
    return (settings is not None and settings.init_classifier) or any(
        wants_features(options) for options in config.strategy_options.values())


def settings_of(config: ExperimentConfig) -> PretrainingSettings:
    """The ``[pretraining]`` table, or the defaults without one."""
    return config.pretraining or PretrainingSettings()


def pretrain_dataset(config: ExperimentConfig, dataset: str, full: Any, net: Any) -> Pretrained:
    """The pretrained features and weights of ``dataset`` (loaded as ``full``), computed or
    read from the cache, with the architecture of ``net`` unless ``[pretraining] net``
    names another."""
    from deepal.nets.registry import NET_DEFAULTS, get_architecture

    settings = settings_of(config)
    if settings.net is not None:
        name, builder = settings.net, get_architecture(settings.net)
    else:
        name, builder = config.training.net or NET_DEFAULTS[dataset][0], net.net
    return pretrain_module(full, builder, name, settings, dataset=dataset,
                           cache_dir=settings.cache_dir, device=net.device)


def with_pretraining(config: ExperimentConfig, dataset: str, pool: Any, net: Any,
                     options: dict[str, Any]) -> dict[str, Any]:
    """A run's strategy options, with ``features = "self-supervised"`` replaced by its pool's
    rows of the pretrained features; with ``init_classifier``, ``net`` is changed to build
    its module from the pretrained weights. Nothing is done when nothing asks for it."""
    asks = wants_features(options)
    init = config.pretraining is not None and config.pretraining.init_classifier
    if not (asks or init):
        return options
    result = pretrain_dataset(config, dataset, pool.full, net)
    if init:
        net.net = PretrainedBuilder(net.net, result.encoder_state)
    if asks:
        options = {**options, "features": result.features[np.asarray(pool.pool_idxs)]}
    return options


class PretrainedBuilder:
    """Builds the module as ``builder`` does, then loads the pretrained weights into it.

    Parameters
    ----------
    builder:
        The architecture's zero-argument builder.
    state:
        The pretrained ``state_dict``.

    Examples
    --------
    >>> from deepal.nets import MLP
    >>> weights = MLP().state_dict()
    >>> module = PretrainedBuilder(MLP, weights)()
    >>> bool(torch.equal(module.head.weight, weights["head.weight"]))
    True
    """

    def __init__(self, builder: Callable[[], nn.Module], state: Mapping[str, torch.Tensor]
                 ) -> None:
        self.builder, self.state = builder, dict(state)

    def __call__(self) -> nn.Module:
        module = self.builder()
        module.load_state_dict(self.state)
        return module
