"""SimCLR's NT-Xent loss on hand-made cases, and the contrastive training loop."""

from __future__ import annotations

import math

import pytest
import torch

from deepal.data import TensorHandler
from deepal.errors import DeepALError
from deepal.nets import MLP
from deepal.nets.contrastive import contrastive_train, embed, nt_xent


def _by_hand(z1: torch.Tensor, z2: torch.Tensor, t: float) -> float:
    """The loss written out view by view, as the paper defines it."""
    z = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1).tolist()
    n = len(z1)
    total = 0.0
    for a in range(2 * n):
        b = (a + n) % (2 * n)
        sim = [sum(p * q for p, q in zip(z[a], z[c], strict=True)) / t for c in range(2 * n)]
        below = sum(math.exp(sim[c]) for c in range(2 * n) if c != a)
        total += -math.log(math.exp(sim[b]) / below)
    return total / (2 * n)


def test_two_orthogonal_pairs_give_the_value_worked_out_by_hand():
    # each view: its pair at cosine 1, the two others at cosine 0
    e = torch.eye(2)
    assert float(nt_xent(e, e, 1.0)) == pytest.approx(math.log(1 + 2 / math.e))
    assert float(nt_xent(e, e, 0.5)) == pytest.approx(math.log(1 + 2 / math.e ** 2))


def test_an_opposite_negative_is_weighed_by_exp_of_minus_one_over_t():
    # 2 pairs on one line: each view has its pair at +1, the other pair's views at -1
    z = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    expected = math.log(1 + 2 * math.exp(-2 / 0.5))  # two negatives at exp(-1/t) / exp(1/t)
    assert float(nt_xent(z, z, 0.5)) == pytest.approx(expected)


def test_random_projections_match_the_definition_and_ignore_the_scale():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    assert float(nt_xent(z1, z2, 0.3)) == pytest.approx(_by_hand(z1, z2, 0.3), rel=1e-5)
    assert float(nt_xent(7 * z1, 0.1 * z2, 0.3)) == pytest.approx(float(nt_xent(z1, z2, 0.3)),
                                                                   rel=1e-5)
    assert float(nt_xent(z2, z1, 0.3)) == pytest.approx(float(nt_xent(z1, z2, 0.3)), rel=1e-5)


def test_aligned_pairs_cost_less_than_swapped_pairs():
    z = torch.eye(4)
    assert float(nt_xent(z, z)) < float(nt_xent(z, z[[1, 0, 3, 2]]))


@pytest.mark.parametrize("z1, z2, t", [
    (torch.zeros(1, 3), torch.zeros(1, 3), 0.5),  # no negative
    (torch.zeros(3, 2), torch.zeros(2, 2), 0.5),  # not paired
    (torch.ones(2, 2), torch.ones(2, 2), 0.0),
])
def test_impossible_batches_and_temperatures_are_refused(z1, z2, t):
    with pytest.raises(DeepALError):
        nt_xent(z1, z2, t)


def _two_clusters(n: int = 64) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    centres = torch.tensor([[3.0, 0, 0, 0], [-3.0, 0, 0, 0]])
    return centres[torch.arange(n) % 2] + 0.3 * torch.randn(n, 4, generator=g)


def _train(seed: int, epochs: int = 3) -> tuple[list[float], MLP]:
    torch.manual_seed(seed)
    encoder = MLP(n_features=4, n_classes=2, hidden=16, embedding_dim=8)
    noisy = lambda x, g: x + 0.1 * torch.randn(x.shape, generator=g)  # noqa: E731
    losses = contrastive_train(
        encoder, TensorHandler(_two_clusters()), noisy, epochs=epochs, batch_size=16,
        temperature=0.5, projection_dim=4, optimizer_args={"lr": 1e-2},
        generator=torch.Generator().manual_seed(seed), device=torch.device("cpu"))
    return losses, encoder


def test_training_lowers_the_loss_and_is_deterministic_under_a_seed():
    losses, encoder = _train(0, epochs=8)
    again, twin = _train(0, epochs=8)
    assert losses == again and losses[-1] < losses[0]
    x = TensorHandler(_two_clusters())
    assert (embed(encoder, x, 10, torch.device("cpu")) == embed(twin, x, 10,
                                                               torch.device("cpu"))).all()
    assert _train(1)[0] != losses[:3]


def test_embed_gives_unit_rows_or_the_raw_embedding():
    _, encoder = _train(0)
    x = TensorHandler(_two_clusters(10))
    unit = embed(encoder, x, 4, torch.device("cpu"))
    raw = embed(encoder, x, 4, torch.device("cpu"), normalize=False)
    assert unit.shape == raw.shape == (10, 8) and unit.dtype == raw.dtype
    nonzero = (abs(raw).sum(1) > 0)
    assert abs((unit[nonzero] ** 2).sum(1) - 1).max() < 1e-5
