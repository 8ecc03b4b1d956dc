"""A posterior estimate by name: the softmax, MC dropout (fresh or consistent masks) or a
deep ensemble (see :mod:`deepal.nets.posterior` and :mod:`deepal.nets.ensemble`)."""

from __future__ import annotations

import numpy as np

from deepal.config.arguments import integer
from deepal.errors import DeepALError, UnknownNameError
from deepal.nets.ensemble import EnsemblePosterior
from deepal.nets.posterior import (
    DROPOUT_POSTERIORS,
    POSTERIORS,
    ConsistentMCDropoutPosterior,
    MCDropoutPosterior,
    Net,
    PosteriorEstimate,
)


def get_posterior(
    name: str | None,
    net: Net,
    n_drop: int = 10,
    n_members: int = 5,
    min_samples: int = 1,
    rng: np.random.Generator | None = None,
) -> PosteriorEstimate:
    """Build a posterior estimate by name, with its arguments checked.

    Parameters
    ----------
    name:
        ``"softmax"``, ``"mc_dropout"``, ``"consistent_mc_dropout"`` or ``"ensemble"``;
        ``None`` picks ``"softmax"`` when ``n_drop`` is 0 and ``"mc_dropout"`` otherwise
        (DeepAL's convention).
    net:
        The network wrapper.
    n_drop:
        MC-dropout samples (the two dropout estimates only).
    n_members:
        Ensemble members (``ensemble`` only).
    min_samples:
        The fewest samples per example the caller can use (2 for disagreement scores such
        as BALD, which are 0 on a single sample).
    rng:
        Where ``consistent_mc_dropout`` draws each call's mask seed (see
        :class:`ConsistentMCDropoutPosterior`).

    Returns
    -------
    PosteriorEstimate
    """
    n_drop = integer("n_drop", n_drop, minimum=0)
    n_members = integer("n_members", n_members, minimum=0)
    if name is None:
        name = "softmax" if n_drop == 0 else "mc_dropout"
    if name not in POSTERIORS:
        raise UnknownNameError(f"unknown posterior {name!r}: choose one of {', '.join(POSTERIORS)}")
    estimate: PosteriorEstimate
    if name == "softmax":
        if min_samples > 1:
            raise DeepALError(
                f"this strategy needs at least {min_samples} posterior samples per example and "
                "the softmax gives 1: use posterior='mc_dropout' (n_drop >= 2) or 'ensemble'"
            )
        estimate = PosteriorEstimate(net)
    elif name in DROPOUT_POSTERIORS:
        if n_drop < max(1, min_samples):
            raise DeepALError(f"n_drop must be an integer >= {max(1, min_samples)}, got {n_drop}")
        if name == "consistent_mc_dropout":
            estimate = ConsistentMCDropoutPosterior(net, n_drop, rng)
        else:
            estimate = MCDropoutPosterior(net, n_drop)
    else:
        if n_members < max(1, min_samples):
            raise DeepALError(
                f"n_members must be an integer >= {max(1, min_samples)}, got {n_members}"
            )
        estimate = EnsemblePosterior(net, n_members)
    return estimate
