"""Where a module's weights live: its device and, on a CPU, the memory layout its convolutions
run fastest in.

On a CPU, PyTorch's oneDNN convolutions and max-pooling run about twice as fast on small CNNs
when the 4-d weights are stored channels-last (NHWC): the activations then follow that layout
from the first convolution on. The layout is invisible to a module that flattens with
``flatten``/``reshape``, but ``view`` on a channels-last activation raises, so only modules
that say they are safe get it: deepal's own CNNs, and any module whose class sets
``channels_last_on_cpu = True``. The values are the same up to float rounding; the saved
weights (``state_dict``) load into a module of either layout.

Examples
--------
>>> import torch
>>> from deepal.nets import MNIST_Net
>>> net = placed(MNIST_Net(), "cpu")
>>> net.conv1.weight.is_contiguous(memory_format=torch.channels_last)
True
>>> plain = placed(torch.nn.Conv2d(1, 2, 3), "cpu")  # no say-so: left as it is
>>> plain.weight.is_contiguous()
True
"""

from __future__ import annotations

from typing import TypeVar

import torch
from torch import nn

__all__ = ["placed"]

ModuleT = TypeVar("ModuleT", bound=nn.Module)


def placed(module: ModuleT, device: torch.device | str) -> ModuleT:
    """``module`` moved to ``device``; on a CPU, channels-last when its class allows it.

    Parameters
    ----------
    module:
        Any module; it is changed in place and returned.
    device:
        Where its weights go.

    Returns
    -------
    nn.Module
        ``module``.
    """
    module = module.to(device)
    if torch.device(device).type == "cpu" and getattr(module, "channels_last_on_cpu", False):
        module = module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return module
