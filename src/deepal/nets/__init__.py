"""The Net wrapper and the networks."""

from deepal.nets.net import DEFAULT_PARAMS, Net, mc_dropout

__all__ = ["DEFAULT_PARAMS", "Net", "mc_dropout"]
