"""Self-supervised pretraining's settings (an experiment's ``[pretraining]`` table, and the
``settings`` of :func:`deepal.pretrain_features`)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator

from deepal.config.base import Settings
from deepal.config.fields import (
    Name,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    Seed,
)

#: The value of a strategy's ``features`` option that asks for the pretrained features.
SELF_SUPERVISED = "self-supervised"

#: Settings left out of the cache key: where the result is kept and how it is used, not what
#: it is (the architecture enters the key by its resolved name).
NOT_IN_KEY = ("cache_dir", "init_classifier", "net")


def _two_or_more(value: int) -> int:
    if value < 2:
        raise ValueError("must be an integer >= 2 (each example's negatives are the other "
                         "examples of its batch)")
    return value


def _scale(value: float) -> float:
    if not 0 < value <= 1:
        raise ValueError("must be a number in (0, 1]")
    return value


def _unit(value: float) -> float:
    if not 0 <= value <= 1:
        raise ValueError("must be a number in [0, 1]")
    return value


class PretrainingSettings(Settings):
    """Contrastive pretraining of the data set's network body on the pool's inputs (SimCLR,
    Chen et al., 2020), run once and cached.

    Attributes
    ----------
    epochs:
        Passes over the (sub)set of pool inputs pretrained on.
    batch_size:
        Inputs per step (at least 2): each input's two views are a positive pair, the
        other ``2 * batch_size - 2`` views its negatives.
    max_examples:
        Pretrain on at most this many pool inputs, drawn with ``seed`` (``None``: all);
        the features still cover the whole pool. Bounds the cost on a large pool.
    temperature:
        The NT-Xent loss's temperature.
    lr, weight_decay:
        Adam's learning rate and weight decay.
    projection_dim:
        Output size of the projection head (trained with the encoder, then thrown away).
    min_scale, jitter, flip:
        Image views: the smallest random crop (fraction of the area), the brightness and
        contrast jitter, and left-right flips (see :func:`deepal.nets.augment.contrastive_view`).
        Inputs that are not images get :func:`deepal.nets.augment.feature_view` instead.
    normalize:
        Scale each feature vector to unit length (the cosine geometry the loss trains).
    seed:
        Seed of the encoder's initial weights, the views and the subset.
    net:
        Architecture name (or ``package.module:ClassName``); ``None``: the experiment's
        ``[training] net``, else the data set's default.
    cache_dir:
        Folder of the cache; ``None``: ``$DEEPAL_CACHE/pretraining``, else
        ``~/.cache/deepal/pretraining`` (``$XDG_CACHE_HOME`` if set).
    init_classifier:
        In an experiment, start the classifier's training at every round from the
        pretrained encoder's weights instead of a random initialisation.

    Examples
    --------
    >>> PretrainingSettings(epochs=2).batch_size
    256
    >>> from deepal.config import validated
    >>> validated(PretrainingSettings, {"batch_size": 1}, "[pretraining]")
    Traceback (most recent call last):
    ...
    deepal.config.base.ConfigError: [pretraining] batch_size: must be an integer >= 2 (each ...
    """

    epochs: PositiveInt = 20
    batch_size: Annotated[PositiveInt, AfterValidator(_two_or_more)] = 256
    max_examples: Annotated[PositiveInt, AfterValidator(_two_or_more)] | None = None
    temperature: PositiveFloat = 0.2
    lr: PositiveFloat = 1e-3
    weight_decay: NonNegativeFloat = 1e-6
    projection_dim: PositiveInt = 64
    min_scale: Annotated[float, AfterValidator(_scale)] = 0.5
    jitter: Annotated[float, AfterValidator(_unit)] = 0.4
    flip: bool = False
    normalize: bool = True
    seed: Seed = 0
    net: Name | None = None
    cache_dir: Name | None = None
    init_classifier: bool = False

    def key_settings(self) -> dict[str, Any]:
        """The settings that decide the features and weights (the cache key's part)."""
        return {key: value for key, value in self.model_dump().items()
                if key not in NOT_IN_KEY}
