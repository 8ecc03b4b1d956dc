"""Pools, handlers and data set sources."""

from deepal.data.handlers import TensorHandler, image_handler
from deepal.data.pool import UNKNOWN, Data

__all__ = ["Data", "TensorHandler", "UNKNOWN", "image_handler"]
