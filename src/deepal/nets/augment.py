"""Augmentations on batched tensors, for training on the unlabeled pool.

Semi-supervised training (FixMatch: a weak and a strong view of each unlabeled image) and
contrastive pretraining (SimCLR: two random crops of each image) both need random views of a
whole batch at once. Every function here takes a float batch ``(N, C, H, W)`` on any device
and gives a new batch of the same shape, dtype and device:

- each example gets its own random parameters, all drawn on the CPU from ``generator``, so a
  seed gives the same views on every device;
- pixel values stay inside ``value_range`` (by default the batch's own minimum and maximum),
  so normalised inputs stay normalised; intensity operations work on the batch mapped to
  ``[0, 1]`` inside that range;
- shifts move whole pixels, edges mirrored; other geometric operations are one
  :func:`torch.nn.functional.grid_sample` per call, with the area uncovered filled with the
  range's low end (the background of a digit) or with the edge's pixels.

Examples
--------
>>> import torch
>>> from deepal.nets.augment import contrastive_view, strong_augment, weak_augment
>>> x = torch.rand(8, 1, 28, 28)
>>> g = torch.Generator().manual_seed(0)
>>> [tuple(f(x, g).shape) for f in (weak_augment, strong_augment, contrastive_view)]
[(8, 1, 28, 28), (8, 1, 28, 28), (8, 1, 28, 28)]
>>> bool(weak_augment(x, g).min() >= x.min())
True
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from deepal.errors import DeepALError

__all__ = ["contrastive_view", "feature_view", "strong_augment", "weak_augment"]

ValueRange = tuple[float, float]


def weak_augment(
    x: torch.Tensor,
    generator: torch.Generator,
    *,
    flip: bool = False,
    max_shift: float = 0.125,
    value_range: ValueRange | None = None,
) -> torch.Tensor:
    """A random translation by whole pixels (edges mirrored) and, with ``flip``, a random
    horizontal flip: FixMatch's weak view.

    Parameters
    ----------
    x:
        Images ``(N, C, H, W)``, floating point.
    generator:
        The CPU generator all random parameters are drawn from.
    flip:
        Flip each image left-right with probability 1/2. Off by default: a mirrored digit or
        letter is another symbol.
    max_shift:
        The largest shift, as a fraction of the image's height and width.
    value_range:
        The smallest and largest pixel value; the batch's own by default.

    Returns
    -------
    torch.Tensor
        The views, same shape, dtype and device as ``x``.

    Examples
    --------
    >>> import torch
    >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
    >>> g = torch.Generator().manual_seed(0)
    >>> bool(torch.equal(weak_augment(x, g, max_shift=0.0), x))
    True
    """
    _check_images(x)
    _check_fraction("max_shift", max_shift)
    n, _, height, width = x.shape
    pad = int(max_shift * max(height, width))
    shift_y = torch.randint(-int(max_shift * height), int(max_shift * height) + 1, (n,),
                            generator=generator)
    shift_x = torch.randint(-int(max_shift * width), int(max_shift * width) + 1, (n,),
                            generator=generator)
    views = _shift(x, shift_y, shift_x, pad)
    if flip:
        mirrored = (_signs(n, generator) < 0).to(x.device)
        views = torch.where(mirrored.view(-1, 1, 1, 1), views.flip(-1), views)
    return views.clamp(*_range(x, value_range))


def strong_augment(
    x: torch.Tensor,
    generator: torch.Generator,
    *,
    n_ops: int = 2,
    flip: bool = False,
    cutout: float = 0.5,
    value_range: ValueRange | None = None,
) -> torch.Tensor:
    """FixMatch's strong view: the weak view, then ``n_ops`` operations picked at random per
    image with a random strength (RandAugment as FixMatch samples it), then a square cut out.

    The operations are rotation, shears, translations, brightness, contrast, sharpness,
    posterisation, solarisation, auto-contrast and identity.

    Parameters
    ----------
    x:
        Images ``(N, C, H, W)``, floating point.
    generator:
        The CPU generator all random parameters are drawn from.
    n_ops:
        Operations applied to each image, each picked independently.
    flip:
        Passed to :func:`weak_augment`.
    cutout:
        The largest side of the square filled with the range's middle value, as a fraction
        of the image's side; 0 cuts nothing.
    value_range:
        The smallest and largest pixel value; the batch's own by default.

    Returns
    -------
    torch.Tensor
        The views, same shape, dtype and device as ``x``.

    Examples
    --------
    >>> import torch
    >>> x = torch.rand(4, 3, 32, 32)
    >>> views = strong_augment(x, torch.Generator().manual_seed(0))
    >>> bool(views.min() >= x.min() and views.max() <= x.max())
    True
    """
    if n_ops < 0:
        raise DeepALError(f"n_ops must be >= 0, got {n_ops}")
    _check_fraction("cutout", cutout)
    bounds = _range(x, value_range)
    views = weak_augment(x, generator, flip=flip, value_range=bounds)
    n = len(views)
    for _ in range(n_ops):
        choice = torch.randint(len(_OPERATIONS), (n,), generator=generator)
        strength = torch.rand(n, generator=generator)
        sign = _signs(n, generator)
        for index, operation in enumerate(_OPERATIONS):
            chosen = (choice == index).nonzero().flatten()
            if len(chosen):
                rows = chosen.to(views.device)
                views[rows] = operation(views[rows], strength[chosen] * sign[chosen], bounds)
    return _cut_out(views, cutout, bounds, generator) if cutout > 0 else views


def contrastive_view(
    x: torch.Tensor,
    generator: torch.Generator,
    *,
    min_scale: float = 0.3,
    flip: bool = False,
    jitter: float = 0.4,
    value_range: ValueRange | None = None,
) -> torch.Tensor:
    """SimCLR's view: a random crop of ``min_scale`` to all of the image's area (aspect ratio
    3/4 to 4/3) resized to the full image, an optional flip, then brightness and contrast each
    scaled by a random factor in ``[1 - jitter, 1 + jitter]``.

    Parameters
    ----------
    x:
        Images ``(N, C, H, W)``, floating point.
    generator:
        The CPU generator all random parameters are drawn from.
    min_scale:
        The smallest crop, as a fraction of the image's area, in ``(0, 1]``.
    flip:
        Flip each image left-right with probability 1/2.
    jitter:
        How far brightness and contrast factors may move from 1, in ``[0, 1]``.
    value_range:
        The smallest and largest pixel value; the batch's own by default.

    Returns
    -------
    torch.Tensor
        The views, same shape, dtype and device as ``x``.

    Examples
    --------
    >>> import torch
    >>> x = torch.rand(2, 1, 8, 8)
    >>> g = torch.Generator().manual_seed(0)
    >>> bool(torch.allclose(contrastive_view(x, g, min_scale=1.0, jitter=0.0), x, atol=1e-6))
    True
    """
    _check_images(x)
    if not 0 < min_scale <= 1:
        raise DeepALError(f"min_scale must be in (0, 1], got {min_scale}")
    _check_fraction("jitter", jitter)
    n = len(x)
    area = min_scale + (1 - min_scale) * torch.rand(n, generator=generator)
    # The aspect ratio's range narrows as the area grows, so that the crop fits the image.
    widest = torch.minimum(torch.full((n,), math.log(4 / 3)), -torch.log(area))
    log_ratio = widest * (2 * torch.rand(n, generator=generator) - 1)
    scale_x = torch.sqrt(area * torch.exp(log_ratio)).clamp(max=1.0)
    scale_y = torch.sqrt(area / torch.exp(log_ratio)).clamp(max=1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = scale_x * (_signs(n, generator) if flip else 1.0)
    theta[:, 1, 1] = scale_y
    # The crop's centre keeps the whole crop inside the image.
    theta[:, 0, 2] = (1 - scale_x) * (2 * torch.rand(n, generator=generator) - 1)
    theta[:, 1, 2] = (1 - scale_y) * (2 * torch.rand(n, generator=generator) - 1)
    bounds = _range(x, value_range)
    views = _warp(x, theta, bounds, padding="border")
    brightness = jitter * (2 * torch.rand(n, generator=generator) - 1)
    contrast = jitter * (2 * torch.rand(n, generator=generator) - 1)
    views = _blend(views, torch.full_like(views, bounds[0]), brightness, bounds)
    mean = views.mean(dim=(1, 2, 3), keepdim=True).expand_as(views)
    return _blend(views, mean, contrast, bounds)


def feature_view(
    x: torch.Tensor,
    generator: torch.Generator,
    *,
    drop: float = 0.2,
    noise: float = 0.1,
) -> torch.Tensor:
    """A random view of inputs that are not images (feature vectors, or any shape): each
    value is replaced by its feature's batch mean with probability ``drop``, then Gaussian
    noise of ``noise`` times the feature's batch standard deviation is added; each feature
    stays inside its batch minimum and maximum.

    Parameters
    ----------
    x:
        Inputs ``(N, ...)``, floating point, every axis after the first a feature axis.
    generator:
        The CPU generator all random numbers are drawn from.
    drop:
        Probability that a value is replaced by its feature's mean, in ``[0, 1]``.
    noise:
        Noise scale relative to each feature's standard deviation, in ``[0, 1]``.

    Returns
    -------
    torch.Tensor
        The views, same shape, dtype and device as ``x``.

    Examples
    --------
    >>> import torch
    >>> x = torch.rand(16, 5)
    >>> views = feature_view(x, torch.Generator().manual_seed(0))
    >>> bool((views >= x.min(0).values).all() and (views <= x.max(0).values).all())
    True
    >>> bool(torch.equal(feature_view(x, torch.Generator(), drop=0.0, noise=0.0), x))
    True
    """
    if not x.is_floating_point() or x.dim() < 2:
        raise DeepALError(f"feature_view takes a float batch (N, ...), got a "
                          f"{x.dim()}-dimensional {x.dtype} tensor")
    _check_fraction("drop", drop)
    _check_fraction("noise", noise)
    mean, low, high = x.mean(dim=0), x.min(dim=0).values, x.max(dim=0).values
    std = x.std(dim=0, unbiased=False)
    masked = (torch.rand(x.shape, generator=generator) < drop).to(x.device)
    views = torch.where(masked, mean.expand_as(x), x)
    jitter = torch.randn(x.shape, generator=generator).to(device=x.device, dtype=x.dtype)
    return torch.maximum(torch.minimum(views + noise * std * jitter, high), low)


# -- geometry ------------------------------------------------------------------------------


def _identity(n: int) -> torch.Tensor:
    return torch.eye(2, 3).repeat(n, 1, 1)


def _warp(x: torch.Tensor, theta: torch.Tensor, bounds: ValueRange, padding: str
          ) -> torch.Tensor:
    """``x`` sampled bilinearly at the affine maps ``theta`` (output to input coordinates in
    ``[-1, 1]``); with zero padding the uncovered area takes the range's low end."""
    if len(x) == 0:
        return x.clone()
    theta = theta.to(device=x.device, dtype=x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    low = bounds[0]
    shifted = x - low if padding == "zeros" else x
    out = F.grid_sample(shifted, grid, mode="bilinear", padding_mode=padding,
                        align_corners=False)
    out = out + low if padding == "zeros" else out
    return out.clamp(*bounds)


def _shift(x: torch.Tensor, shift_y: torch.Tensor, shift_x: torch.Tensor, pad: int
           ) -> torch.Tensor:
    """Each image moved by its own whole number of pixels, the edges mirrored (repeated
    when the shift is as large as the image): exact copies of pixels, no interpolation."""
    n, _, height, width = x.shape
    if pad:
        mode = "reflect" if pad < min(height, width) else "replicate"
        x = F.pad(x, (pad, pad, pad, pad), mode=mode)
    rows = (torch.arange(height).view(1, height) + pad - shift_y.view(n, 1)).to(x.device)
    columns = (torch.arange(width).view(1, width) + pad - shift_x.view(n, 1)).to(x.device)
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    moved = x.permute(0, 2, 3, 1)[batch, rows.view(n, height, 1), columns.view(n, 1, width)]
    return moved.permute(0, 3, 1, 2).contiguous()


def _signs(n: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randint(0, 2, (n,), generator=generator).float() * 2 - 1


def _rotate(x: torch.Tensor, strength: torch.Tensor, bounds: ValueRange) -> torch.Tensor:
    angle = strength * math.radians(30)
    theta = _identity(len(x))
    theta[:, 0, 0], theta[:, 0, 1] = torch.cos(angle), -torch.sin(angle)
    theta[:, 1, 0], theta[:, 1, 1] = torch.sin(angle), torch.cos(angle)
    return _warp(x, theta, bounds, padding="zeros")


def _affine_entry(row: int, column: int, largest: float
                  ) -> Callable[[torch.Tensor, torch.Tensor, ValueRange], torch.Tensor]:
    """An operation setting one entry of the affine map to ``strength * largest``: a shear
    (off-diagonal) or a translation (last column)."""
    def operation(x: torch.Tensor, strength: torch.Tensor, bounds: ValueRange) -> torch.Tensor:
        theta = _identity(len(x))
        theta[:, row, column] = strength * largest
        return _warp(x, theta, bounds, padding="zeros")
    return operation


# -- intensity (on the batch mapped to [0, 1] inside its range) ----------------------------


def _unit(x: torch.Tensor, bounds: ValueRange) -> tuple[torch.Tensor, float, float]:
    low, high = bounds
    span = (high - low) or 1.0
    return (x - low) / span, low, span


def _per_example(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return values.to(device=x.device, dtype=x.dtype).view(-1, *([1] * (x.dim() - 1)))


def _blend(x: torch.Tensor, towards: torch.Tensor, factor: torch.Tensor, bounds: ValueRange
           ) -> torch.Tensor:
    """``towards + (1 + factor) * (x - towards)`` in unit range, clamped: the image moved away
    from (``factor > 0``) or towards (``factor < 0``) a reference image."""
    unit, low, span = _unit(x, bounds)
    reference, _, _ = _unit(towards, bounds)
    scale = 1 + _per_example(factor, x)
    return (reference + scale * (unit - reference)).clamp(0, 1) * span + low


def _brightness(x: torch.Tensor, strength: torch.Tensor, bounds: ValueRange) -> torch.Tensor:
    return _blend(x, torch.full_like(x, bounds[0]), 0.9 * strength, bounds)


def _contrast(x: torch.Tensor, strength: torch.Tensor, bounds: ValueRange) -> torch.Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True).expand_as(x)
    return _blend(x, mean, 0.9 * strength, bounds)


def _sharpness(x: torch.Tensor, strength: torch.Tensor, bounds: ValueRange) -> torch.Tensor:
    channels = x.shape[1]
    kernel = torch.tensor([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]]) / 13
    kernel = kernel.to(device=x.device, dtype=x.dtype).expand(channels, 1, 3, 3)
    smooth = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=channels)
    return _blend(x, smooth, 0.9 * strength, bounds)


def _posterize(x: torch.Tensor, strength: torch.Tensor, bounds: ValueRange) -> torch.Tensor:
    unit, low, span = _unit(x, bounds)
    levels = _per_example(2.0 ** (8 - torch.round(4 * strength.abs())), x)
    return (torch.floor(unit * (levels - 1) + 0.5) / (levels - 1)) * span + low


def _solarize(x: torch.Tensor, strength: torch.Tensor, bounds: ValueRange) -> torch.Tensor:
    unit, low, span = _unit(x, bounds)
    threshold = 1 - _per_example(strength.abs(), x)
    return torch.where(unit >= threshold, 1 - unit, unit) * span + low


def _autocontrast(x: torch.Tensor, strength: torch.Tensor, bounds: ValueRange) -> torch.Tensor:
    unit, low, span = _unit(x, bounds)
    darkest = unit.amin(dim=(2, 3), keepdim=True)
    brightest = unit.amax(dim=(2, 3), keepdim=True)
    stretched = (unit - darkest) / (brightest - darkest).clamp(min=1e-6)
    flat = brightest - darkest < 1e-6  # a constant channel stays as it is
    return torch.where(flat, unit, stretched).clamp(0, 1) * span + low


def _unchanged(x: torch.Tensor, strength: torch.Tensor, bounds: ValueRange) -> torch.Tensor:
    return x


_OPERATIONS: tuple[Callable[[torch.Tensor, torch.Tensor, ValueRange], torch.Tensor], ...] = (
    _unchanged, _autocontrast, _brightness, _contrast, _sharpness, _posterize, _solarize,
    _rotate, _affine_entry(0, 1, 0.3), _affine_entry(1, 0, 0.3),
    _affine_entry(0, 2, 0.6), _affine_entry(1, 2, 0.6),
)


def _cut_out(x: torch.Tensor, cutout: float, bounds: ValueRange, generator: torch.Generator
             ) -> torch.Tensor:
    """Each image with a square of random side up to ``cutout`` of its own, at a random
    centre, set to the range's middle value."""
    n, _, height, width = x.shape
    side = torch.rand(n, generator=generator) * cutout * min(height, width)
    centre_y = torch.rand(n, generator=generator) * height
    centre_x = torch.rand(n, generator=generator) * width
    rows = torch.arange(height).view(1, height, 1)
    columns = torch.arange(width).view(1, 1, width)
    half = (side / 2).view(n, 1, 1)
    inside = (((rows + 0.5) - centre_y.view(n, 1, 1)).abs() < half) & \
             (((columns + 0.5) - centre_x.view(n, 1, 1)).abs() < half)
    middle = (bounds[0] + bounds[1]) / 2
    return x.masked_fill(inside.unsqueeze(1).to(x.device), middle)


# -- checks --------------------------------------------------------------------------------


def _range(x: torch.Tensor, value_range: ValueRange | None) -> ValueRange:
    if value_range is not None:
        low, high = (float(v) for v in value_range)
        if not (math.isfinite(low) and math.isfinite(high) and low <= high):
            raise DeepALError(f"value_range must be two finite numbers, low <= high, "
                              f"got {value_range}")
        return low, high
    _check_images(x)
    if len(x) == 0:
        return 0.0, 1.0
    return float(x.min()), float(x.max())


def _check_images(x: torch.Tensor) -> None:
    if x.dim() != 4 or not x.is_floating_point():
        raise DeepALError(
            f"augmentations take a float batch of images (N, C, H, W), got a "
            f"{x.dim()}-dimensional {x.dtype} tensor: use them on image data only"
        )


def _check_fraction(name: str, value: float) -> None:
    if not 0 <= value <= 1:
        raise DeepALError(f"{name} must be in [0, 1], got {value}")
