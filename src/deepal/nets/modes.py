"""The modes a network is evaluated in: eval mode, and eval mode with its dropout sampling.

Kept apart from :class:`~deepal.Net` so that the posterior estimates, the attacks and the
training hooks can switch a module's mode without depending on the wrapper.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from torch import nn

from deepal.errors import DeepALError

DROPOUT_TYPES = (
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout,
)


@contextmanager
def eval_mode(model: nn.Module, sample_dropout: bool = False) -> Iterator[nn.Module]:
    """Run ``model`` in eval mode, its dropout layers sampling if ``sample_dropout``; every
    module's own mode is restored on exit, whatever it was.

    Examples
    --------
    >>> model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    >>> with eval_mode(model):
    ...     model.training
    False
    >>> model.training
    True
    """
    modes = {module: module.training for module in model.modules()}
    model.eval()
    if sample_dropout:
        for module in model.modules():
            if isinstance(module, DROPOUT_TYPES):
                module.train()
    try:
        yield model
    finally:
        for module, mode in modes.items():
            module.train(mode)


def mc_dropout(model: nn.Module) -> AbstractContextManager[nn.Module]:
    """Evaluate ``model`` with its dropout layers sampling and everything else (BatchNorm
    included) in eval mode; every module's mode is restored on exit.

    Parameters
    ----------
    model:
        The network.

    Returns
    -------
    AbstractContextManager[nn.Module]
        A context manager giving ``model`` in that mode.

    Examples
    --------
    >>> import torch
    >>> from deepal.nets import MLP
    >>> _ = torch.manual_seed(0)
    >>> model, x = MLP(n_features=4, n_classes=2), torch.randn(3, 4)
    >>> with mc_dropout(model) as sampling:
    ...     first, second = sampling(x)[0], sampling(x)[0]
    >>> bool(torch.equal(first, second)), model.training
    (False, True)
    """
    return eval_mode(model, sample_dropout=True)


def require_trained(module: nn.Module | None) -> nn.Module:
    """``module``, or a :class:`DeepALError` saying to train first when there is none yet."""
    if module is None:
        raise DeepALError("the network is not trained yet: call train() first")
    return module
