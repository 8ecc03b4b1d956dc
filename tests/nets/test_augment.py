"""The batched image augmentations: shapes, ranges, determinism, and what each view does."""

from __future__ import annotations

import pytest
import torch

from deepal.errors import DeepALError
from deepal.nets.augment import contrastive_view, strong_augment, weak_augment

VIEWS = (weak_augment, strong_augment, contrastive_view)


def _digits_like(n: int = 16, channels: int = 1, seed: int = 0) -> torch.Tensor:
    """Normalised images: a dark background and bright strokes, as MNIST after its mean/std."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, channels, 28, 28, generator=g) > 0.8).float()
    return (x - 0.1307) / 0.3081


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("channels", [1, 3])
def test_views_keep_shape_dtype_and_the_inputs_range(view, channels):
    x = _digits_like(channels=channels)
    out = view(x, torch.Generator().manual_seed(1))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert out.min() >= x.min() - 1e-6 and out.max() <= x.max() + 1e-6
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("view", VIEWS)
def test_views_are_deterministic_under_a_seed_and_differ_across_seeds(view):
    x = _digits_like()
    first = view(x, torch.Generator().manual_seed(3))
    again = view(x, torch.Generator().manual_seed(3))
    other = view(x, torch.Generator().manual_seed(4))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


@pytest.mark.parametrize("view", VIEWS)
def test_each_example_gets_its_own_parameters(view):
    x = _digits_like(n=1).repeat(8, 1, 1, 1)
    out = view(x, torch.Generator().manual_seed(0))
    distinct = {tuple(row.flatten().tolist()) for row in out}
    assert len(distinct) > 1


@pytest.mark.parametrize("view", VIEWS)
def test_an_explicit_range_bounds_the_views(view):
    x = _digits_like()
    out = view(x, torch.Generator().manual_seed(0), value_range=(-0.2, 1.0))
    assert out.min() >= -0.2 - 1e-6 and out.max() <= 1.0 + 1e-6


def test_weak_view_shifts_by_whole_pixels():
    x = torch.zeros(64, 1, 16, 16)
    x[:, :, 8, 8] = 1.0  # one bright pixel: a shift moves it whole, never blurs it
    out = weak_augment(x, torch.Generator().manual_seed(0), max_shift=0.25)
    assert set(out.unique().tolist()) == {0.0, 1.0}
    assert (out.sum(dim=(1, 2, 3)) == 1).all()
    rows, columns = (out[:, 0] == 1).nonzero()[:, 1], (out[:, 0] == 1).nonzero()[:, 2]
    assert (rows - 8).abs().max() <= 4 and (columns - 8).abs().max() <= 4
    assert len({(int(r), int(c)) for r, c in zip(rows, columns, strict=True)}) > 5


def test_weak_view_without_shift_or_flip_is_the_input():
    x = _digits_like()
    assert torch.equal(weak_augment(x, torch.Generator().manual_seed(0), max_shift=0.0), x)


def test_weak_flip_mirrors_some_images_and_only_mirrors():
    x = _digits_like(n=32)
    out = weak_augment(x, torch.Generator().manual_seed(0), max_shift=0.0, flip=True)
    mirrored = torch.tensor([torch.equal(o, i.flip(-1)) for o, i in zip(out, x, strict=True)])
    unchanged = torch.tensor([torch.equal(o, i) for o, i in zip(out, x, strict=True)])
    assert (mirrored | unchanged).all()
    assert mirrored.any() and unchanged.any()


def test_strong_view_changes_images_and_cuts_out_a_middle_grey_square():
    x = torch.zeros(32, 1, 28, 28)
    x[:, :, ::2] = 1.0
    out = strong_augment(x, torch.Generator().manual_seed(0), n_ops=0, cutout=0.5)
    middle = (out == 0.5).flatten(1).sum(dim=1)
    assert (middle > 0).any()
    assert middle.max() <= 14 * 14 + 2 * 14 + 1  # never larger than half the side squared


def test_strong_view_without_operations_or_cutout_is_the_weak_view():
    x = _digits_like()
    strong = strong_augment(x, torch.Generator().manual_seed(5), n_ops=0, cutout=0.0)
    weak = weak_augment(x, torch.Generator().manual_seed(5))
    assert torch.equal(strong, weak)


def test_contrastive_view_with_full_crop_and_no_jitter_is_the_input():
    x = _digits_like()
    out = contrastive_view(x, torch.Generator().manual_seed(0), min_scale=1.0, jitter=0.0)
    assert torch.allclose(out, x, atol=1e-5)


def test_contrastive_crops_zoom_in():
    x = torch.zeros(16, 1, 28, 28)
    x[:, :, 10:18, 10:18] = 1.0
    out = contrastive_view(x, torch.Generator().manual_seed(0), min_scale=0.3, jitter=0.0)
    # a crop resized to the whole image enlarges the square wherever it is kept whole
    assert (out.flatten(1).sum(dim=1) >= 64 - 1e-3).any()
    assert not torch.allclose(out, x)


def test_views_run_on_an_empty_batch():
    x = torch.zeros(0, 1, 8, 8)
    for view in VIEWS:
        assert view(x, torch.Generator().manual_seed(0)).shape == x.shape


@pytest.mark.parametrize("bad", [torch.zeros(4, 10), torch.zeros(4, 1, 8, 8, dtype=torch.long)])
def test_non_image_batches_are_refused(bad):
    for view in VIEWS:
        with pytest.raises(DeepALError, match="batch of images"):
            view(bad, torch.Generator())


@pytest.mark.parametrize(("call", "message"), [
    (lambda x, g: weak_augment(x, g, max_shift=1.5), "max_shift"),
    (lambda x, g: strong_augment(x, g, n_ops=-1), "n_ops"),
    (lambda x, g: strong_augment(x, g, cutout=-0.1), "cutout"),
    (lambda x, g: contrastive_view(x, g, min_scale=0.0), "min_scale"),
    (lambda x, g: contrastive_view(x, g, jitter=2.0), "jitter"),
    (lambda x, g: weak_augment(x, g, value_range=(1.0, 0.0)), "value_range"),
])
def test_bad_settings_are_refused(call, message):
    with pytest.raises(DeepALError, match=message):
        call(_digits_like(n=2), torch.Generator())
