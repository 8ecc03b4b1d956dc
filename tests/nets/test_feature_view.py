"""The view of inputs that are not images (used by contrastive pretraining on tables)."""

from __future__ import annotations

import pytest
import torch

from deepal.errors import DeepALError
from deepal.nets.augment import feature_view


def _table(n: int = 32, d: int = 6) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(0)) * 3 + 1


def test_each_feature_stays_in_its_batch_range():
    x = _table()
    views = feature_view(x, torch.Generator().manual_seed(1), drop=0.5, noise=1.0)
    assert views.shape == x.shape and views.dtype == x.dtype
    assert (views >= x.min(0).values).all() and (views <= x.max(0).values).all()
    assert not torch.equal(views, x)


def test_the_same_generator_seed_gives_the_same_view():
    x = _table()
    first = feature_view(x, torch.Generator().manual_seed(5))
    again = feature_view(x, torch.Generator().manual_seed(5))
    other = feature_view(x, torch.Generator().manual_seed(6))
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_dropped_values_become_the_feature_mean():
    x = _table()
    views = feature_view(x, torch.Generator().manual_seed(2), drop=1.0, noise=0.0)
    assert torch.allclose(views, x.mean(0).expand_as(x))


@pytest.mark.parametrize("bad", [{"drop": 1.5}, {"noise": -0.1}])
def test_bad_strengths_are_refused(bad):
    with pytest.raises(DeepALError):
        feature_view(_table(), torch.Generator(), **bad)


def test_integer_or_one_dimensional_inputs_are_refused():
    with pytest.raises(DeepALError, match="float batch"):
        feature_view(torch.arange(5), torch.Generator())
