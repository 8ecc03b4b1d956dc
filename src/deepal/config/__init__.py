"""deepal's typed settings: the one place where every setting is validated.

Experiments, ``deepal run``, labelling projects and a :class:`~deepal.Net`'s parameters are
all checked by the pydantic models of this package, before anything is written. Its modules
import nothing of deepal but its errors, so every other part may use them: shared field types
(counts, finite numbers, names, device names) are in :mod:`deepal.config.fields`, the training
settings and a net's parameters in :mod:`deepal.config.training`, an experiment's tables in
:mod:`deepal.config.experiment`.
"""

from deepal.config.base import ConfigError, Settings, validated

__all__ = ["ConfigError", "Settings", "validated"]
