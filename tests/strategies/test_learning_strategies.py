"""The training hook and the learning-based strategies: LossPrediction, VAAL, WAAL, CEAL and
ActiveLearningByLearning."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deepal import UNKNOWN, Data, Net, Strategy, get_strategy, seed_everything
from deepal.data.batches import iter_batches
from deepal.errors import DeepALError
from deepal.nets.architectures import MNIST_Net
from deepal.nets.auxiliary import FeatureTap
from deepal.nets.hooks import TrainingHook, TrainStep
from deepal.scores.bandit import (
    exp4p_probabilities,
    exp4p_update,
    importance_weighted_accuracy,
)
from deepal.scores.learned import confident_pseudo_labels, loss_ranking_loss, waal_uncertainty
from deepal.scores.uncertainty import entropy
from deepal.strategies.albl import ActiveLearningByLearning
from deepal.strategies.ceal import CEAL
from deepal.strategies.vaal import VAAL
from deepal.strategies.waal import WAAL

from conftest import TinyNet

LEARNING = ["LossPrediction", "VAAL", "WAAL", "CEAL", "ActiveLearningByLearning"]
PARAMS = {"n_epoch": 3, "train_args": {"batch_size": 16}, "optimizer": "Adam",
          "optimizer_args": {"lr": 0.01}}


def tiny_net(**params) -> Net:
    return Net(TinyNet, {**PARAMS, **params}, device="cpu")


# -- the training hook ------------------------------------------------------------------------


def _weights(net: Net) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net.clf.parameters()]


def test_a_net_without_a_hook_trains_exactly_as_the_plain_loop(pool: Data):
    _, labeled = pool.get_labeled_data()
    torch.manual_seed(3)
    net = tiny_net()
    net.train(labeled)
    # The loop as it was before hooks existed, step by step.
    torch.manual_seed(3)
    model = TinyNet()
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    generator = torch.Generator().manual_seed(int(torch.randint(2**62, ()).item()))
    for _ in range(3):
        for x, y, _idx in iter_batches(labeled, 16, shuffle=True, generator=generator):
            optimizer.zero_grad()
            F.cross_entropy(model(x)[0], y).backward()
            optimizer.step()
    for ours, plain in zip(_weights(net), model.parameters(), strict=True):
        assert torch.equal(ours, plain.detach())
    # A hook that does nothing changes nothing either.
    torch.manual_seed(3)
    hooked = tiny_net()
    hooked.training_hooks.append(TrainingHook())
    hooked.train(labeled)
    for a, b in zip(_weights(net), _weights(hooked), strict=True):
        assert torch.equal(a, b)


class Recorder(TrainingHook):
    """Adds a learnable scalar ``s`` with the loss ``(s - 2)^2`` and records every call."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.epochs: list[int] = []
        self.s = nn.Parameter(torch.zeros(()))

    def on_train_start(self, net, model, data):
        self.calls.append("start")
        assert model is net.clf and model.training
        return [self.s]

    def extra_loss(self, step: TrainStep):
        assert step.logits.shape == (len(step.x), 3) and step.embedding.shape == (len(step.x), 16)
        assert step.loss.shape == () and step.n_epoch == 2
        self.epochs.append(step.epoch)
        return (self.s - 2.0) ** 2

    def after_step(self, step: TrainStep):
        self.calls.append("step")

    def on_train_end(self, net, model, data):
        self.calls.append("end")


def test_the_hook_is_called_and_its_parameters_are_optimised(pool: Data):
    _, labeled = pool.get_labeled_data()  # 10 examples: batches of 4, 4, 2
    net = Net(TinyNet, {"n_epoch": 2, "train_args": {"batch_size": 4}, "optimizer": "SGD",
                        "optimizer_args": {"lr": 0.1}}, device="cpu")
    net.training_hooks.append(hook := Recorder())
    net.train(labeled)
    assert hook.calls == ["start"] + ["step"] * 6 + ["end"]
    assert hook.epochs == [0, 0, 0, 1, 1, 1]
    # Six SGD steps on (s - 2)^2 with lr 0.1 from 0: s = 2 (1 - 0.8^6).
    assert hook.s.item() == pytest.approx(2 * (1 - 0.8**6), rel=1e-5)
    assert hook.s.grad is None and not net.clf.training


@pytest.mark.parametrize("name", ["LossPrediction", "VAAL", "WAAL"])
def test_the_learning_strategies_register_their_hook(pool: Data, name: str):
    net = tiny_net()
    strategy = get_strategy(name)(pool, net)
    assert net.training_hooks == [strategy.hook]


# -- every strategy on a pool nobody has labelled ---------------------------------------------


@pytest.mark.parametrize("name", LEARNING)
def test_n_distinct_unlabeled_picks_on_a_pool_without_labels(unknown_pool: Data, name: str):
    assert (unknown_pool.Y_train[~unknown_pool.labeled_idxs] == UNKNOWN).all()
    seed_everything(0)
    strategy = get_strategy(name)(unknown_pool, tiny_net())
    strategy.train()
    for size in (7, 5):
        picked = strategy.query(size)
        assert len(np.unique(picked)) == size
        assert not unknown_pool.labeled_idxs[picked].any()
        strategy.update(picked, labels=np.arange(size) % 3)
        strategy.train()


# -- LossPrediction ---------------------------------------------------------------------------


def test_loss_ranking_loss_by_hand():
    # Pairs (0, 2) and (1, 3): true losses 2 > 1 in both.
    # (0, 2): predicted 0.5 vs 0.2, right order but 0.3 < margin 1 -> 1 - 0.3 = 0.7.
    # (1, 3): predicted 3.0 vs 0.5, right order by 2.5 >= 1 -> 0.
    predicted = torch.tensor([0.5, 3.0, 0.2, 0.5], requires_grad=True)
    target = torch.tensor([2.0, 2.0, 1.0, 1.0], requires_grad=True)
    loss = loss_ranking_loss(predicted, target)
    assert loss.item() == pytest.approx(0.35)
    loss.backward()
    assert target.grad is None or not target.grad.any()
    assert torch.allclose(predicted.grad, torch.tensor([-0.5, 0.0, 0.5, 0.0]))
    # The wrong order costs the gap plus the margin; an odd last example is left out.
    wrong = loss_ranking_loss(torch.tensor([0.2, 0.5, 9.0]), torch.tensor([2.0, 1.0, 0.0]))
    assert wrong.item() == pytest.approx(1.3)
    assert loss_ranking_loss(torch.tensor([1.0]), torch.tensor([1.0])).item() == 0.0


def test_loss_prediction_on_intermediate_features_of_a_cnn():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (24, 1, 28, 28), dtype=torch.uint8, generator=g)
    data = Data(x, torch.randint(0, 10, (24,), generator=g).numpy(), n_classes=10)
    data.label(np.arange(12))
    net = Net(MNIST_Net, {"n_epoch": 1, "train_args": {"batch_size": 6}}, device="cpu")
    strategy = get_strategy("LossPrediction")(data, net, feature_layers=["conv1", "conv2", "fc1"])
    strategy.train()
    assert [branch[0].in_features for branch in strategy.hook.module.branches] == [10, 20, 50]
    picked = strategy.query(4)
    scores = strategy.last_scores
    assert len(scores) == 12 and np.isfinite(scores).all()
    assert set(picked.tolist()) == set((12 + np.argsort(-scores)[:4]).tolist())
    assert not net.clf._forward_hooks and not net.clf.conv1._forward_hooks  # taps removed


def test_feature_tap_names_the_valid_layers():
    with pytest.raises(DeepALError, match="no layer 'conv9'.*conv1"):
        FeatureTap(MNIST_Net(), ["conv9"])


def test_loss_prediction_query_before_training_is_a_clear_error(pool: Data):
    net = tiny_net()
    net.train(pool.get_labeled_data()[1])
    strategy = get_strategy("LossPrediction")(pool, Net(TinyNet, PARAMS, device="cpu"))
    strategy.net.clf = net.clf  # a net trained before the strategy existed
    with pytest.raises(DeepALError, match="call strategy.train"):
        strategy.query(3)
    strategy.train()
    strategy.query(3)
    strategy.net.training_hooks.clear()  # trained again without it: the module is stale
    strategy.net.train(pool.get_labeled_data()[1])
    with pytest.raises(DeepALError, match="after any other training"):
        strategy.query(3)


# -- VAAL -------------------------------------------------------------------------------------


def separated_pool(seed: int = 0) -> tuple[Data, np.ndarray]:
    """40 labeled and 40 unlabeled examples around 0, 20 unlabeled far away (around +6)."""
    rng = np.random.default_rng(seed)
    near = rng.normal(scale=0.5, size=(80, 4))
    far = rng.normal(loc=6.0, scale=0.5, size=(20, 4))
    x = np.concatenate([near, far]).astype(np.float32)
    data = Data(x, None, n_classes=3)
    data.label(np.arange(40), rng.integers(0, 3, 40))
    return data, np.arange(80, 100)


def test_vaal_discriminator_separates_labeled_from_unlabeled_and_queries_the_unlabeled_side():
    data, far = separated_pool()
    seed_everything(0)
    vaal = VAAL(data, tiny_net(n_epoch=1), n_steps=300, batch_size=32, random_state=0)
    vaal.train()
    p_labeled = vaal.labeled_probability(data.get_inputs(np.arange(100)))
    # labeled = 1: the far unlabeled examples score near 0; around the origin, labeled and
    # unlabeled examples come from one distribution, so the discriminator hesitates there.
    assert p_labeled[:40].min() > 0.25 > 0.01 > p_labeled[far].max()
    assert abs(p_labeled[:40].mean() - p_labeled[40:80].mean()) < 0.1
    picked = vaal.query(10)
    assert set(picked.tolist()) <= set(far.tolist())


# -- WAAL -------------------------------------------------------------------------------------


def test_waal_uncertainty_by_hand():
    uniform = torch.full((1, 4), 0.25)
    # log p = -log 4 everywhere: L1 = 4 log 4, L2 = 2 log 4, score = -3 log 4.
    assert waal_uncertainty(uniform).item() == pytest.approx(-3 * math.log(4))
    confident = torch.tensor([[0.97, 0.01, 0.01, 0.01]])
    assert waal_uncertainty(confident).item() < waal_uncertainty(uniform).item()


def test_waal_critic_scores_the_unlabeled_side_higher():
    data, far = separated_pool()
    seed_everything(0)
    waal = WAAL(data, tiny_net(n_epoch=20), random_state=0)
    waal.train()
    with torch.no_grad():
        embedding = waal.net.get_embeddings(data.get_inputs(np.arange(100)))
        critic = waal.hook.critic(embedding)
    assert critic[far].mean() > critic[:40].mean()
    assert len(np.unique(waal.query(8))) == 8


# -- CEAL -------------------------------------------------------------------------------------


def test_confident_pseudo_labels_by_hand():
    probs = torch.tensor([[0.98, 0.01, 0.01], [0.4, 0.3, 0.3], [0.0, 1.0, 0.0]])
    positions, labels = confident_pseudo_labels(probs, threshold=0.2)
    assert positions.tolist() == [0, 2] and labels.tolist() == [0, 1]


def test_ceal_pseudo_labels_train_once_and_never_become_labels(pool: Data):
    seed_everything(0)
    net = tiny_net(n_epoch=30)
    ceal = CEAL(pool, net, delta=0.3, decay=0.1, random_state=0)
    ceal.train()
    labeled_before, y_before = pool.labeled_idxs.copy(), pool.Y_train.copy()
    probs = ceal.predict_prob(pool.get_unlabeled_data()[1])
    picked = ceal.query(5)
    assert ceal.threshold == pytest.approx(0.2)  # decayed once
    unlabeled = np.flatnonzero(~labeled_before)
    below = set(unlabeled[(entropy(probs) < 0.3).numpy()].tolist()) - set(picked.tolist())
    assert len(below) > 0 and set(ceal.pseudo_idxs.tolist()) == below
    position = np.searchsorted(unlabeled, ceal.pseudo_idxs)
    assert (ceal.pseudo_labels == probs[position].argmax(dim=1).numpy()).all()

    seen = []
    train = net.train
    net.train = lambda data: (seen.append(data), train(data))[1]
    ceal.update(picked)
    ceal.train()
    ceal.train()  # the pseudo-labels were for one training only
    assert len(seen[0]) == pool.n_labeled + len(below) and len(seen[1]) == pool.n_labeled
    assert len(ceal.pseudo_idxs) == 0  # cleared after use
    # The pool itself never saw a pseudo-label.
    expected = labeled_before.copy()
    expected[picked] = True
    assert (pool.labeled_idxs == expected).all() and (pool.Y_train == y_before).all()


def test_ceal_rejects_an_unknown_criterion(pool: Data):
    with pytest.raises(DeepALError, match="unknown criterion 'bald'"):
        CEAL(pool, tiny_net(), criterion="bald")


# -- ActiveLearningByLearning -----------------------------------------------------------------


def test_exp4p_update_by_hand():
    weights = np.ones(2)
    advice = np.array([[1.0, 0.0], [0.0, 1.0]])
    q = exp4p_probabilities(weights, advice, p_min=0.1)
    assert np.allclose(q, [0.5, 0.5])  # (1 - 2 * 0.1) * 0.5 + 0.1
    new = exp4p_update(weights, advice, q, np.array([0]), reward=1.0, p_min=0.1, horizon=10)
    # yhat = (2, 0), vhat = (2, 2): only yhat differs, so w0 / w1 = exp(0.1 / 2 * 2).
    assert new[0] / new[1] == pytest.approx(math.exp(0.1))
    assert new.sum() == pytest.approx(2.0)


def test_exp4p_update_counts_each_pick_of_a_batch_as_a_round():
    advice = np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    q = exp4p_probabilities(np.ones(2), advice, p_min=0.1)
    assert np.allclose(q, [0.275, 0.275, 0.45])  # 0.7 * (0.25, 0.25, 0.5) + 0.1
    new = exp4p_update(np.ones(2), advice, q, np.array([0, 1]), reward=1.0, p_min=0.1,
                       horizon=10)
    # Two rounds paid 1: yhat = (2 * 0.5 / 0.275, 0); vhat = (1 / 0.275, 1 / 0.45), twice.
    bonus = math.sqrt(math.log(2 / 0.1) / (3 * 10))
    exponent = 0.05 * (2 * 0.5 / 0.275 + 2 * (1 / 0.275 - 1 / 0.45) * bonus)
    assert new[0] / new[1] == pytest.approx(math.exp(exponent))


def test_importance_weighted_accuracy_by_hand():
    correct = [np.array([True, False]), np.array([True])]
    inverse = [np.array([2.0, 4.0]), np.array([5.0])]
    # Round 1: 2 / 10; round 2: 5 / 10; mean 0.35.
    assert importance_weighted_accuracy(correct, inverse, [10, 10]) == pytest.approx(0.35)
    assert importance_weighted_accuracy([], [], []) == 0.0


class Lowest(Strategy):
    needs_model = False

    def query(self, n):
        return self.candidate_idxs()[:n]


class Highest(Strategy):
    needs_model = False

    def query(self, n):
        return self.candidate_idxs()[-n:]


class Rigged(ActiveLearningByLearning):
    """Paid 1 when the last pick is one that ``Lowest`` advised, 0 otherwise."""

    def reward(self) -> float:
        advice, _, picked, _ = self._pending
        return float(advice[0, picked].sum() > 0)


def test_albl_weights_move_to_the_rewarded_strategy(pool: Data):
    net = tiny_net()
    albl = Rigged(pool, net, strategies=[Lowest(pool, net), Highest(pool, net)],
                  p_min=0.005, random_state=0)
    q_before = None
    for _ in range(12):
        picked = albl.query(1)
        q_before = albl.last_scores if q_before is None else q_before
        pool.label(picked)
    assert albl.weights[0] > albl.weights[1]
    assert albl.last_scores[0] > q_before[0]  # more of the draw follows the rewarded one


def test_albl_real_reward_and_held_strategies(pool: Data):
    seed_everything(0)
    albl = ActiveLearningByLearning(pool, tiny_net(), random_state=0)
    assert [type(s).__name__ for s in albl.strategies] == [
        "RandomSampling", "MarginSampling", "KCenterGreedy"]
    albl.train()
    for _ in range(2):
        picked = albl.query(4)
        albl.update(picked)
        albl.train()
    albl.query(4)
    assert 0.0 <= albl.last_reward <= 1.0 and not np.allclose(albl.weights, 1.0)


def test_albl_p_min_is_checked(pool: Data):
    albl = ActiveLearningByLearning(pool, tiny_net(), p_min=0.5, random_state=0)
    albl.train()
    with pytest.raises(DeepALError, match="p_min=0.5 must be in"):
        albl.query(2)
