"""``get_strategy``: strategy classes by DeepAL's names, or a user's class by import path."""

from __future__ import annotations

import importlib

from deepal.errors import UnknownNameError
from deepal.plugins import canonical_name, is_import_spec, load_object
from deepal.strategies.base import Strategy

#: Strategy name -> module under ``deepal.strategies`` defining it (imported on first use).
STRATEGIES: dict[str, str] = {
    "RandomSampling": "random_sampling",
    "LeastConfidence": "uncertainty",
    "MarginSampling": "uncertainty",
    "EntropySampling": "uncertainty",
    "LeastConfidenceDropout": "uncertainty",
    "MarginSamplingDropout": "uncertainty",
    "EntropySamplingDropout": "uncertainty",
    "BALDDropout": "bald",
    "VariationRatioDropout": "disagreement",
    "MeanSTDDropout": "disagreement",
    "BatchBALD": "batchbald",
    "PowerBALD": "stochastic_bald",
    "SoftmaxBALD": "stochastic_bald",
    "SoftRankBALD": "stochastic_bald",
    "EPIG": "epig",
    "KMeansSampling": "kmeans",
    "KMediansSampling": "kmedians",
    "KCenterGreedy": "kcenter",
    "KCenterGreedyRobust": "kcenter_robust",
    "BADGE": "badge",
    "ClusterMargin": "cluster_margin",
    "TypiClust": "typiclust",
    "ProbCover": "probcover",
    "BAIT": "bait",
    "AdversarialBIM": "adversarial_bim",
    "AdversarialDeepFool": "adversarial_deepfool",
    "LossPrediction": "loss_prediction",
    "VAAL": "vaal",
    "WAAL": "waal",
    "CEAL": "ceal",
    "ActiveLearningByLearning": "albl",
}


def get_strategy(name: str) -> type[Strategy]:
    """The strategy class called ``name`` (case-insensitive), or a user's
    ``package.module:ClassName``, which must subclass :class:`Strategy`.

    Parameters
    ----------
    name:
        A strategy's class name (see :data:`STRATEGIES`), or ``package.module:ClassName``.

    Returns
    -------
    type[Strategy]
        The class, to be called with ``(dataset, net, ...)``.

    Examples
    --------
    >>> get_strategy("marginsampling").__name__
    'MarginSampling'
    """
    if is_import_spec(name):
        cls = load_object(name)
    else:
        canonical = canonical_name(name, list(STRATEGIES), "strategy")
        module = importlib.import_module(f"deepal.strategies.{STRATEGIES[canonical]}")
        cls = getattr(module, canonical)
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise UnknownNameError(f"{name!r} is not a subclass of deepal.Strategy")
    return cls
