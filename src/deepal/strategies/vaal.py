"""Variational adversarial active learning (Sinha et al., 2019)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from deepal.config.arguments import integer, number, optional_integer
from deepal.data.batches import iter_batches
from deepal.data.pool import Data
from deepal.errors import DeepALError
from deepal.nets.auxiliary import VAE, mlp_scorer, n_features_of
from deepal.nets.hooks import HookedNet, TrainingHook, cycle_batches
from deepal.nets.net import Net
from deepal.scores.learned import vae_loss
from deepal.scores.selection import top_n
from deepal.state import Stateful, from_state, load_module, module_state, to_state
from deepal.strategies.base import Strategy


@dataclass(frozen=True)
class _Options:
    """VAAL's settings of its VAE and discriminator (see :class:`VAAL`)."""

    latent_dim: int
    hidden: int
    n_steps: int | None
    batch_size: int
    lr: float
    beta: float
    adversary_weight: float


class VAALHook(TrainingHook):
    """Trains a fresh VAE and discriminator on the pool after each training of the net
    (the parameters as for :class:`VAAL`; ``rng`` is the strategy's).

    Attributes
    ----------
    vae, discriminator:
        The trained networks (``None`` before the first training).
    labeled:
        The labeled set they were trained against.
    """

    def __init__(
        self,
        dataset: Data,
        net: Net,
        rng: np.random.Generator,
        options: _Options,
    ) -> None:
        self.dataset, self.net, self.rng, self.options = dataset, net, rng, options
        self.vae: VAE | None = None
        self.discriminator: nn.Module | None = None
        self.labeled: np.ndarray | None = None
        self.n_features: int | None = None

    def on_train_end(self, net: HookedNet, model: nn.Module, data: Dataset) -> None:
        self.fit(net.device)

    def fit(self, device: torch.device) -> None:
        """Train a fresh VAE and discriminator on the labeled and unlabeled inputs."""
        labeled = self.dataset.get_inputs(np.flatnonzero(self.dataset.labeled_idxs))
        _, unlabeled = self.dataset.get_unlabeled_data()
        if len(labeled) == 0 or len(unlabeled) == 0:  # type: ignore[arg-type]
            raise DeepALError("VAAL needs both labeled and unlabeled examples to train")
        o = self.options
        n_steps = o.n_steps or self.net.params["n_epoch"] * math.ceil(
            self.dataset.n_pool / o.batch_size
        )
        generator = torch.Generator().manual_seed(int(self.rng.integers(2**62)))
        self.n_features = n_features_of(next(iter_batches(labeled, 1))[0])
        vae, disc = self._networks()
        vae.to(device)
        disc.to(device)
        vae_opt = torch.optim.Adam(vae.parameters(), lr=o.lr)
        disc_opt = torch.optim.Adam(disc.parameters(), lr=o.lr)
        lab_batches = cycle_batches(labeled, o.batch_size, generator)
        unl_batches = cycle_batches(unlabeled, o.batch_size, generator)
        vae.train()
        disc.train()
        for _ in range(n_steps):
            xl = next(lab_batches)[0].to(device).flatten(1)
            xu = next(unl_batches)[0].to(device).flatten(1)
            # The VAE: reconstruct both sets, and make the discriminator call both labeled.
            recon_l, mu_l, logvar_l = vae(xl)
            recon_u, mu_u, logvar_u = vae(xu)
            logits = disc(torch.cat([mu_l, mu_u]))
            adversarial = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
            loss = (vae_loss(xl, recon_l, mu_l, logvar_l, o.beta)
                    + vae_loss(xu, recon_u, mu_u, logvar_u, o.beta)
                    + o.adversary_weight * adversarial)
            vae_opt.zero_grad(set_to_none=True)
            loss.backward()
            vae_opt.step()
            # The discriminator: labeled = 1, unlabeled = 0, on the (fixed) latent means.
            with torch.no_grad():
                mu = torch.cat([vae.encode(xl)[0], vae.encode(xu)[0]])
            target = torch.cat([torch.ones(len(xl)), torch.zeros(len(xu))]).to(device)
            disc_opt.zero_grad(set_to_none=True)
            F.binary_cross_entropy_with_logits(disc(mu), target).backward()
            disc_opt.step()
        self.vae, self.discriminator = vae.eval(), disc.eval()
        self.labeled = self.dataset.labeled_idxs.copy()

    def _networks(self) -> tuple[VAE, nn.Module]:
        assert self.n_features is not None
        o = self.options
        return (VAE(self.n_features, o.latent_dim, o.hidden),
                mlp_scorer(o.latent_dim, o.hidden))

    def state_dict(self) -> dict[str, Any]:
        return {"vae": module_state(self.vae), "discriminator": module_state(self.discriminator),
                "n_features": self.n_features, "labeled": to_state(self.labeled)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.n_features = state["n_features"]
        device = self.net.device
        self.vae = load_module(lambda: self._networks()[0], state["vae"], device, "VAE")
        self.discriminator = load_module(lambda: self._networks()[1], state["discriminator"],
                                         device, "discriminator")
        self.labeled = from_state(state["labeled"])


class VAAL(Strategy):
    """Pick the unlabeled examples a discriminator is most sure are unlabeled.

    A VAE learns a latent space from labeled and unlabeled inputs alike, while a
    discriminator on the latent means learns to tell them apart, with **labeled = 1 and
    unlabeled = 0**; the VAE plays against it by trying to make every latent look labeled.
    The query takes the unlabeled examples with the lowest probability of being labeled:
    those least like anything labeled so far. The class labels are never used.

    Simplifications: the VAE is a small MLP on flattened inputs (the paper uses a
    convolutional one), and both networks are trained from scratch at every round, after
    the classifier (they are independent of it), through a training hook on the net.

    Parameters
    ----------
    dataset, net, random_state, max_candidates:
        As for :class:`~deepal.strategies.base.Strategy` (the last two by keyword). The
        strategy appends its :attr:`hook` to ``net.training_hooks``.
    latent_dim, hidden:
        Size of the VAE's latent code and hidden layers.
    n_steps:
        Training steps of the VAE and the discriminator per round (one labeled and one
        unlabeled batch each). ``None``: the net's ``n_epoch`` passes over the pool, as
        the paper's iteration count (about 9,400 steps for MNIST's 60,000 examples and 10
        epochs: seconds on a GPU, minutes on a CPU, where a lower value such as 1,000 helps).
    batch_size, lr:
        Their batch size (each of labeled and unlabeled) and Adam learning rate.
    beta, adversary_weight:
        Weight of the KL term in the VAE loss and of the VAE's adversarial term.

    Attributes
    ----------
    hook:
        The :class:`VAALHook` holding the trained ``vae`` and ``discriminator``.

    Examples
    --------
    >>> import numpy as np
    >>> import deepal
    >>> from deepal.nets import MLP
    >>> X = np.random.default_rng(0).normal(size=(60, 4)).astype("float32")
    >>> data = deepal.Data(X, np.arange(60) % 3)
    >>> first = data.initialize_labels(12, random_state=0)
    >>> net = deepal.Net(lambda: MLP(n_features=4, n_classes=3), {"n_epoch": 2}, device="cpu")
    >>> strategy = deepal.VAAL(data, net, random_state=0, n_steps=5)
    >>> strategy.train()
    >>> picked = strategy.query(5)
    >>> len(set(picked.tolist())), bool(data.labeled_idxs[picked].any())
    (5, False)
    """

    def __init__(
        self,
        dataset: Data,
        net: Net,
        latent_dim: int = 32,
        hidden: int = 256,
        n_steps: int | None = None,
        batch_size: int = 64,
        lr: float = 5e-4,
        beta: float = 1.0,
        adversary_weight: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(dataset, net, **kwargs)
        options = _Options(
            integer("latent_dim", latent_dim, minimum=1), integer("hidden", hidden, minimum=1),
            optional_integer("n_steps", n_steps, minimum=1),
            integer("batch_size", batch_size, minimum=1), number("lr", lr, above=0),
            number("beta", beta, at_least=0),
            number("adversary_weight", adversary_weight, at_least=0))
        self.hook = VAALHook(dataset, net, self.rng, options)
        net.training_hooks.append(self.hook)

    def state_parts(self) -> dict[str, Stateful]:
        return {"hook": self.hook}

    def fit(self, device: torch.device) -> None:
        """Train a fresh VAE and discriminator (:meth:`VAALHook.fit`)."""
        self.hook.fit(device)

    @torch.inference_mode()
    def labeled_probability(self, data: Dataset) -> torch.Tensor:
        """The discriminator's probability that each example of ``data`` is labeled, ``(N,)``."""
        vae, discriminator = self.hook.vae, self.hook.discriminator
        if vae is None or discriminator is None:
            raise DeepALError(
                "VAAL's networks are trained with the net: call strategy.train() after "
                "creating the strategy"
            )
        if self.hook.labeled is not None and not np.array_equal(
            self.hook.labeled, self.dataset.labeled_idxs
        ):
            warnings.warn(
                "VAAL's discriminator was trained on an older labeled set: call "
                "strategy.train() after labelling", RuntimeWarning, stacklevel=2,
            )
        device = next(vae.parameters()).device
        parts = [
            torch.sigmoid(discriminator(vae.encode(b[0].to(device).flatten(1))[0])).cpu()
            for b in iter_batches(data, self.net.params["test_args"]["batch_size"])
        ]
        return torch.cat(parts) if parts else torch.empty(0)

    def query(self, n: int) -> np.ndarray:
        idxs, data = self.candidates()
        scores = 1.0 - self.labeled_probability(data)  # higher = more surely unlabeled
        self.last_scores = scores.numpy()
        return idxs[top_n(scores, n)]
