"""Adversarial attacks that measure how far each example lies from the decision boundary.

The adversarial strategies of DeepAL (Ducoffe & Precioso, 2018) score an unlabeled example by
the squared norm of the smallest perturbation that changes the model's prediction: the closer
to the boundary, the more informative. Two attacks find that perturbation:

* :func:`bim_perturbation_norms`, the basic iterative method: signed-gradient steps of size
  ``eps`` that increase the loss of the original prediction;
* :func:`deepfool_perturbation_norms`, multi-class DeepFool: steps to the nearest boundary of
  the model linearised at the current point.

Unlike DeepAL, which attacks one example at a time with no cap on BIM's loop, both functions
attack a whole batch at once: every example still predicted as its original class takes a step
together, an example whose prediction has changed is frozen, and the loop stops when all have
flipped or after ``max_iter`` steps. An example that never flips gets the score ``+inf``: no
perturbation within the budget moved it across a boundary, so it is treated as farther from
one than every example that did flip, and ranks last for a strategy that picks the smallest.

The model is run in eval mode (each module's mode is restored afterwards) and differentiated
with respect to its input only (:func:`torch.autograd.grad`), so its parameters' ``.grad`` are
left exactly as found. Gradients of a batch are taken as the gradient of a sum over the batch,
which is exact because examples do not interact in eval mode. Do not call these functions
under :func:`torch.inference_mode`, which no context can re-enable gradients in.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from deepal.data.batches import iter_batches
from deepal.nets.net import eval_mode

#: ``(low, high)``, each a number or a tensor broadcastable over a batch of inputs.
Bounds = tuple[torch.Tensor | float, torch.Tensor | float]

#: One step of an attack: ``(logits, inputs, original labels) -> perturbation step``.
StepFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

#: A batch attack, called as ``attack(model, x, bounds=bounds) -> (sq_norms, flipped)``.
Attack = Callable[..., tuple[torch.Tensor, torch.Tensor]]


def bim_perturbation_norms(
    model: nn.Module,
    x: torch.Tensor,
    eps: float = 0.05,
    max_iter: int = 100,
    bounds: Bounds | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared norm of the BIM perturbation that changes each example's prediction.

    Each step adds ``eps * sign(grad_x CE(f(x + eta), y0))``, where ``y0`` is the prediction
    at the start, to every example whose prediction is still ``y0``.

    Parameters
    ----------
    model:
        A module whose ``forward`` returns ``(logits, embedding)`` (or the logits alone).
    x:
        A batch of inputs, shape ``(B, ...)``; the attack runs on its device.
    eps:
        Step size (per input component); must be positive.
    max_iter:
        Most steps taken; an example not flipped by then scores ``+inf``.
    bounds:
        ``(low, high)`` valid input range: perturbed inputs are clamped into it. ``None`` for
        no limit.

    Returns
    -------
    sq_norms:
        Shape ``(B,)``, ``||eta||^2`` of each example, ``+inf`` where it never flipped.
    flipped:
        Shape ``(B,)`` bool, whether the prediction changed within ``max_iter`` steps.
    """
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps}")

    def step(logits: torch.Tensor, inputs: torch.Tensor, y0: torch.Tensor) -> torch.Tensor:
        # A sum, not a mean: each example's gradient must not depend on the batch size.
        loss = F.cross_entropy(logits, y0, reduction="sum")
        (grad,) = torch.autograd.grad(loss, inputs)
        return eps * grad.sign()

    return _attack(model, x, max_iter, bounds, step)


def deepfool_perturbation_norms(
    model: nn.Module,
    x: torch.Tensor,
    max_iter: int = 50,
    epsilon: float = 1e-4,
    bounds: Bounds | None = None,
    max_classes: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared norm of the DeepFool perturbation that changes each example's prediction.

    With ``k0`` the original prediction, each step linearises the model at the current point:
    for every other class ``k``, ``w_k = grad f_k - grad f_k0`` and ``f'_k = f_k - f_k0``. The
    nearest linearised boundary is the ``k`` minimising ``|f'_k| / ||w_k||``, and the step to it
    is ``r = (|f'_k| + epsilon) / ||w_k||^2 * w_k``. Classes with ``w_k = 0`` cannot be reached
    and are skipped; an example with no reachable class does not move.

    Parameters
    ----------
    model:
        A module whose ``forward`` returns ``(logits, embedding)`` (or the logits alone).
    x:
        A batch of inputs, shape ``(B, ...)``; the attack runs on its device.
    max_iter:
        Most steps taken; an example not flipped by then scores ``+inf``.
    epsilon:
        Added to ``|f'_k|`` so that a step crosses the linearised boundary rather than landing
        on it: for a linear model one step flips the prediction, and the norm exceeds the exact
        distance to the boundary by ``epsilon / ||w_k||``.
    bounds:
        ``(low, high)`` valid input range: perturbed inputs are clamped into it. ``None`` for
        no limit.
    max_classes:
        Consider only the ``max_classes`` classes with the highest logits at each step (the
        original class always among them), as the DeepFool paper does for ImageNet: each
        step costs ``max_classes`` backward passes instead of one per class. ``None``: all.

    Returns
    -------
    sq_norms:
        Shape ``(B,)``, ``||eta||^2`` of each example, ``+inf`` where it never flipped.
    flipped:
        Shape ``(B,)`` bool, whether the prediction changed within ``max_iter`` steps.
    """
    if not epsilon >= 0:
        raise ValueError(f"epsilon must be >= 0, got {epsilon}")
    if max_classes is not None and (isinstance(max_classes, bool) or max_classes < 2):
        raise ValueError(f"max_classes must be an integer >= 2 or None, got {max_classes!r}")

    def step(logits: torch.Tensor, inputs: torch.Tensor, y0: torch.Tensor) -> torch.Tensor:
        return _deepfool_step(logits, inputs, y0, epsilon, max_classes)

    return _attack(model, x, max_iter, bounds, step)


def dataset_perturbation_norms(
    model: nn.Module,
    data: Dataset,
    attack: Attack,
    batch_size: int,
    device: torch.device | str,
    progress: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``attack`` over ``data`` batch by batch; returns ``(sq_norms, flipped)`` on the CPU.

    Parameters
    ----------
    model:
        The classifier, already on ``device``.
    data:
        A dataset whose batches (:func:`~deepal.data.batches.iter_batches`) start with inputs.
        If it has an ``input_bounds()`` method (as :class:`~deepal.data.TensorHandler` does),
        perturbed inputs are clamped into the range it returns.
    attack:
        Called as ``attack(model, x, bounds=bounds)`` and returning ``(sq_norms, flipped)``,
        e.g. :func:`bim_perturbation_norms` with its other arguments bound by
        :func:`functools.partial`.
    batch_size:
        Examples attacked together.
    device:
        Where each batch is moved before the attack.
    progress:
        Show a progress bar.
    """
    input_bounds = getattr(data, "input_bounds", None)
    bounds = input_bounds() if callable(input_bounds) else None
    sq_norms, flipped = [], []
    total = -(-len(data) // batch_size)  # type: ignore[arg-type]
    batches = iter_batches(data, batch_size)
    for batch in tqdm(batches, desc="attack", leave=False, disable=not progress, total=total):
        norms, done = attack(model, batch[0].to(device, non_blocking=True), bounds=bounds)
        sq_norms.append(norms.cpu())
        flipped.append(done.cpu())
    if not sq_norms:
        return torch.empty(0), torch.empty(0, dtype=torch.bool)
    return torch.cat(sq_norms), torch.cat(flipped)


# -- the shared loop -------------------------------------------------------------------------


def _attack(
    model: nn.Module,
    x: torch.Tensor,
    max_iter: int,
    bounds: Bounds | None,
    step: StepFn,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Step every unflipped example with ``step`` until all flip or ``max_iter`` steps."""
    if isinstance(max_iter, bool) or int(max_iter) != max_iter or max_iter < 0:
        raise ValueError(f"max_iter must be an integer >= 0, got {max_iter!r}")
    if not x.is_floating_point():
        raise ValueError(f"inputs must be floating point to be perturbed, got {x.dtype}")
    x = x.detach()
    n = len(x)
    if n == 0:
        return x.new_zeros(0), torch.zeros(0, dtype=torch.bool, device=x.device)
    clamp = _clamper(bounds, x)
    # eta is the perturbation actually applied: clamp(x + eta) - x, so its norm is honest.
    eta = clamp(x) - x
    flipped = torch.zeros(n, dtype=torch.bool, device=x.device)
    active = torch.arange(n, device=x.device)  # examples still predicted as y0
    y0 = torch.empty(0, dtype=torch.long)
    with eval_mode(model), torch.enable_grad():
        for i in range(int(max_iter) + 1):
            rows = active
            inputs = clamp(x[rows] + eta[rows]).requires_grad_(True)
            logits = _logits(model(inputs))
            pred = logits.argmax(dim=1)
            if i == 0:
                y0 = pred.detach()  # the reference label: the prediction at the start
            changed = pred != y0[rows]
            flipped[rows[changed]] = True  # frozen from now on: eta[rows[changed]] stays
            active = rows[~changed]
            if i == max_iter or len(active) == 0:
                break
            r = step(logits, inputs, y0[rows]).detach()[~changed]
            eta[active] = clamp(x[active] + eta[active] + r) - x[active]
    sq_norms = eta.flatten(1).pow(2).sum(dim=1)
    sq_norms[~flipped] = float("inf")
    return sq_norms.detach(), flipped


def _deepfool_step(
    logits: torch.Tensor,
    inputs: torch.Tensor,
    y0: torch.Tensor,
    epsilon: float,
    max_classes: int | None = None,
) -> torch.Tensor:
    """One multi-class DeepFool step for each row of ``inputs`` (see
    :func:`deepfool_perturbation_norms`).

    One autograd call per candidate class gives its input gradient for the whole batch
    (``k`` backward passes per step, as the per-example original, but each over the whole
    batch); memory is ``k`` batches of input gradients.
    """
    n, n_classes = logits.shape
    k = n_classes if max_classes is None else min(max_classes, n_classes)
    rows = torch.arange(n, device=logits.device)
    # Each row's candidate classes: its k highest logits, y0 forced in; in class order, so
    # that ties between classes go to the lower class whatever k is.
    forced = logits.detach().scatter(1, y0[:, None], float("inf"))
    classes = forced.topk(k, dim=1).indices.sort(dim=1).values  # (B, k)
    chosen = logits.gather(1, classes)  # (B, k), attached to the graph
    grads = torch.stack([
        torch.autograd.grad(chosen[:, j].sum(), inputs, retain_graph=j < k - 1)[0]
        for j in range(k)
    ])  # (k, B, ...)
    own = (classes == y0[:, None]).int().argmax(dim=1)  # where y0 sits among the candidates
    w = (grads - grads[own, rows]).flatten(2)  # w_j = grad f_j - grad f_y0, (k, B, D)
    gap = (chosen - chosen[rows, own][:, None]).detach().abs().T  # |f_j - f_y0|, (k, B)
    norm = w.norm(dim=2)
    # w_j = 0 (the original class itself included) gives no direction: never the nearest.
    usable = norm > 0
    dist = torch.where(usable, gap / torch.where(usable, norm, 1.0), float("inf"))
    best = dist.argmin(dim=0)  # first minimum: ties keep the lower class, deterministically
    best_dist, best_gap, best_norm = dist[best, rows], gap[best, rows], norm[best, rows]
    best_w = w[best, rows].reshape(inputs.shape)
    # (|f'| + epsilon) / ||w||^2 * w, written as a length times a unit vector so that a tiny
    # ||w|| cannot overflow the square; rows with no usable class (or an infinite length,
    # when the gap overflows a tiny norm) do not move.
    safe_norm = torch.where(best_norm > 0, best_norm, 1.0)
    length = (best_gap + epsilon) / safe_norm
    length = torch.where(torch.isfinite(best_dist) & torch.isfinite(length), length, 0.0)
    unit = best_w / _rows(safe_norm, best_w)
    return _rows(length, unit) * unit


def _rows(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``values`` of shape ``(B,)`` reshaped to broadcast over ``like``, shape ``(B, ...)``."""
    return values.reshape(-1, *([1] * (like.dim() - 1)))


def _logits(output: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
    """The logits of a forward pass that returns ``(logits, embedding)`` or the logits alone."""
    return output[0] if isinstance(output, (tuple, list)) else output


def _clamper(bounds: Bounds | None, x: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function clamping inputs into ``bounds`` (the identity when there are none)."""
    if bounds is None:
        return lambda z: z
    low, high = (torch.as_tensor(b, dtype=x.dtype, device=x.device) for b in bounds)
    if (low > high).any():
        raise ValueError("bounds must satisfy low <= high")
    return lambda z: torch.minimum(torch.maximum(z, low), high)
