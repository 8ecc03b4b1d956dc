"""deepal's typed settings: the one place where every setting is validated.

Experiments, ``deepal run``, labelling projects and a :class:`~deepal.Net`'s parameters are
all checked by the pydantic models of this package, before anything is written. Its modules
import nothing else of deepal, so every other part may use them.
"""

from deepal.config.base import ConfigError, Settings, validated

__all__ = ["ConfigError", "Settings", "validated"]
