"""deepal: deep active learning in Python."""

from deepal.data import Data, TensorHandler
from deepal.nets import Net
from deepal.strategies.base import Strategy
from deepal.strategies.random_sampling import RandomSampling

__version__ = "0.1.0"
__all__ = ["Data", "Net", "RandomSampling", "Strategy", "TensorHandler", "__version__"]
