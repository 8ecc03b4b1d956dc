"""Small auxiliary networks of the learning-based strategies: a loss-prediction module
(LossPrediction), a VAE (VAAL) and an MLP scorer (VAAL's discriminator, WAAL's critic), and
:class:`FeatureTap`, which reads intermediate features out of any classifier."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType

import torch
from torch import nn

from deepal.errors import DeepALError


class FeatureTap:
    """Record the outputs of named submodules of ``model`` at every forward pass.

    Used as a context manager (``with FeatureTap(model, ["conv2"]) as tap: model(x)``), or
    opened with :meth:`attach` and closed with :meth:`detach`. ``tap.features`` holds the
    latest output of each layer, in the order of ``layers``.

    Raises
    ------
    DeepALError
        If a name is not a submodule of ``model`` (the message lists the valid ones).
    """

    def __init__(self, model: nn.Module, layers: Sequence[str]) -> None:
        modules = dict(model.named_modules())
        missing = [name for name in layers if name not in modules or not name]
        if missing:
            valid = ", ".join(name for name in modules if name)
            raise DeepALError(f"no layer {missing[0]!r} in {type(model).__name__}: use {valid}")
        self.layers = list(layers)
        self._modules = [modules[name] for name in self.layers]
        self._outputs: dict[int, torch.Tensor] = {}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def attach(self) -> FeatureTap:
        for position, module in enumerate(self._modules):
            def keep(
                _m: nn.Module, _i: object, out: torch.Tensor, position: int = position
            ) -> None:
                self._outputs[position] = out
            self._handles.append(module.register_forward_hook(keep))
        return self

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._outputs.clear()

    @property
    def features(self) -> list[torch.Tensor]:
        return [self._outputs[i] for i in range(len(self._modules))]

    def __enter__(self) -> FeatureTap:
        return self.attach()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.detach()


def pooled(feature: torch.Tensor) -> torch.Tensor:
    """A feature map ``(B, C, ...)`` averaged over its spatial axes to ``(B, C)``; vectors
    ``(B, D)`` unchanged."""
    return feature.flatten(2).mean(dim=2) if feature.dim() > 2 else feature.flatten(1)


class LossPredictionModule(nn.Module):
    """The loss-prediction module of Yoo & Kweon (2019): each feature is (globally averaged,)
    mapped by a linear layer and a ReLU to ``hidden`` units; the concatenation is mapped to
    one number, the predicted loss.

    Parameters
    ----------
    in_dims:
        Channels (or size) of each feature.
    hidden:
        Units per feature (128 in the paper).
    """

    def __init__(self, in_dims: Sequence[int], hidden: int = 128) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Linear(d, hidden), nn.ReLU()) for d in in_dims
        )
        self.out = nn.Linear(hidden * len(in_dims), 1)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        parts = [branch(pooled(f)) for branch, f in zip(self.branches, features, strict=True)]
        return self.out(torch.cat(parts, dim=1)).squeeze(1)


class VAE(nn.Module):
    """A small MLP variational auto-encoder on flattened inputs (for VAAL).

    Parameters
    ----------
    n_features:
        Size of a flattened input.
    latent_dim, hidden:
        Size of the latent code and of the hidden layers.
    """

    def __init__(self, n_features: int, latent_dim: int = 32, hidden: int = 256) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Flatten(), nn.Linear(n_features, hidden), nn.ReLU(),
            nn.Linear(hidden, 2 * latent_dim),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, n_features)
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance, each ``(B, latent_dim)``."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar.clamp(-10, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(reconstruction (B, n_features), mu, logvar)`` with a reparametrised sample."""
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        return self.decoder(z), mu, logvar


def mlp_scorer(in_dim: int, hidden: int = 64) -> nn.Sequential:
    """A two-hidden-layer MLP from ``in_dim`` to one unnormalised score per example: VAAL's
    discriminator (a logit) and WAAL's critic."""
    return nn.Sequential(
        nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
        nn.Linear(hidden, 1), nn.Flatten(0),
    )


def n_features_of(example: torch.Tensor) -> int:
    """Flattened size of one input."""
    return int(example[0].numel())
