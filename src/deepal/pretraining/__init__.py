"""Self-supervised features of a pool, pretrained once and cached: :func:`pretrain` and
:func:`pretrain_features` (contrastive pretraining, :mod:`deepal.nets.contrastive`; the
cache, :mod:`deepal.pretraining.cache`)."""

from deepal.pretraining.pretrain import Pretrained, pretrain, pretrain_features

__all__ = ["Pretrained", "pretrain", "pretrain_features"]
