"""What the published protocols need: balanced initial labels, a fixed validation set,
weight decay scaled by the labels, the papers' CNNs and the quartile metric."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from deepal import Data, RandomSampling, TensorHandler
from deepal.data.batches import epoch_order
from deepal.errors import DeepALError, PoolExhaustedError
from deepal.experiments.config import ConfigError, load_config, smoke_config
from deepal.experiments.loop import _test, run_loop
from deepal.experiments.metrics import quartiles
from deepal.experiments.published import export_complete_seeds, protocol_table, seed_table
from deepal.experiments.published import main as published_main
from deepal.experiments.runner import VALIDATION_FILE, run_experiment, run_pool
from deepal.experiments.store import RunStore, read_rows, run_id
from deepal.nets.architectures import BatchBALDCNN, GalCNN
from deepal.nets.hooks import TrainingHook, TrainStep
from deepal.nets.net import Net, mc_dropout

from _experiment_configs import comparable, write_config
from conftest import PlainDataset, TinyNet, blobs


def _pool(labels: list[int]) -> Data:
    y = np.asarray(labels)
    return Data(np.arange(len(y), dtype=np.float32)[:, None], y, n_classes=3)


def test_balanced_initial_labels_draw_the_same_number_per_class():
    data = _pool([0, 1, 2] * 10)
    chosen = data.initialize_labels(6, random_state=0, balanced=True)
    assert np.bincount(data.Y_train[chosen], minlength=3).tolist() == [2, 2, 2]
    again = _pool([0, 1, 2] * 10)
    assert again.initialize_labels(6, random_state=0, balanced=True).tolist() == chosen.tolist()


def test_balanced_initial_labels_refuse_what_cannot_be_balanced():
    with pytest.raises(DeepALError, match="multiple of 3"):
        _pool([0, 1, 2] * 10).initialize_labels(5, random_state=0, balanced=True)
    with pytest.raises(PoolExhaustedError, match="class 2 has 1 unlabeled"):
        _pool([0, 1] * 10 + [2]).initialize_labels(6, random_state=0, balanced=True)


@pytest.mark.parametrize("cls, n_dropout", [(GalCNN, 2), (BatchBALDCNN, 3)])
def test_paper_cnns_keep_the_contract_and_sample_dropout(cls, n_dropout):
    model = cls().eval()
    logits, embedding = model(torch.zeros(3, 1, 28, 28))
    assert logits.shape == (3, 10) and embedding.shape == (3, 128)
    assert model.get_embedding_dim() == 128
    drops = [m for m in model.modules() if isinstance(m, torch.nn.Dropout | torch.nn.Dropout2d)]
    assert len(drops) == n_dropout
    x = torch.rand(2, 1, 28, 28)
    with mc_dropout(model):
        assert not torch.equal(model(x)[0], model(x)[0])


def test_weight_decay_per_example_scales_with_the_training_set(monkeypatch):
    seen = []
    original = torch.optim.Adam.__init__

    def spy(self, params, **kwargs):
        seen.append(kwargs.get("weight_decay"))
        original(self, params, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "__init__", spy)
    net = Net(lambda: torch.nn.Linear(1, 3), {"optimizer": "Adam", "n_epoch": 0,
              "optimizer_args": {"lr": 0.1}, "weight_decay_per_example": 2.0}, device="cpu")
    data = _pool([0, 1, 2] * 10)
    net.train(data.handler(data.X_train[:8], data.Y_train[:8]))
    net.train(data.handler(data.X_train[:20], data.Y_train[:20]))
    assert seen == [0.25, 0.1]


def test_weight_decay_params_decay_only_the_named_parameters():
    # SGD, and zero inputs: the loss gradient of the weights is zero, so only weight decay
    # moves them (w <- w - lr * wd * w); the biases get no decay but a loss gradient.
    class Two(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = torch.nn.Linear(2, 2)
            self.fc2 = torch.nn.Linear(2, 3)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return self.fc2(self.fc1(x)), x

    torch.manual_seed(0)
    start = Two()
    net = Net(lambda: copy.deepcopy(start), {
        "optimizer": "SGD", "n_epoch": 1, "train_args": {"batch_size": 4},
        "optimizer_args": {"lr": 0.5, "weight_decay": 0.2},
        "weight_decay_params": ["fc1.weight"]}, device="cpu")
    data = TensorHandler(np.zeros((4, 2), dtype=np.float32), np.array([0, 1, 2, 0]))
    net.train(data)
    trained = net.clf
    torch.testing.assert_close(trained.fc1.weight, start.fc1.weight * (1 - 0.5 * 0.2))
    assert not torch.equal(trained.fc2.bias, start.fc2.bias)  # it did train
    # fc2's weight sees only its gradient, zero here (its input fc1(0) = fc1's bias is not 0,
    # so compare with a run that decays nothing instead)
    plain = Net(lambda: copy.deepcopy(start), {
        "optimizer": "SGD", "n_epoch": 1, "train_args": {"batch_size": 4},
        "optimizer_args": {"lr": 0.5}}, device="cpu")
    plain.train(data)
    torch.testing.assert_close(trained.fc2.weight, plain.clf.fc2.weight)
    torch.testing.assert_close(trained.fc1.bias, plain.clf.fc1.bias)
    torch.testing.assert_close(plain.clf.fc1.weight, start.fc1.weight)


def test_weight_decay_params_naming_nothing_is_a_clear_error(tmp_path):
    net = Net(lambda: torch.nn.Linear(2, 3), {"n_epoch": 1,
              "weight_decay_params": ["fc9"]}, device="cpu")
    data = TensorHandler(np.zeros((4, 2), dtype=np.float32), np.array([0, 1, 2, 0]))
    with pytest.raises(DeepALError, match=r"\['fc9'\] name no parameter of Linear: its "
                       "parameters are weight, bias"):
        net.train(data)
    with pytest.raises(ConfigError, match="weight_decay_params: must be a list, e.g. "
                                          "\\['fc1'\\], not one string"):
        load_config(write_config(tmp_path, extra_training='weight_decay_params = "fc1"'))


def test_quartiles_by_hand():
    assert quartiles([40, 10, 30, 20]) == (17.5, 25.0, 32.5)
    assert quartiles([7]) == (7.0, 7.0, 7.0)
    assert quartiles([100, 200, None]) == (150.0, 200.0, float("inf"))


def test_protocol_table_counts_labels_to_each_target():
    rows = [{"dataset": "MNIST", "strategy": "S", "seed": seed, "n_labeled": n,
             "test_accuracy": acc}
            for seed, curve in ((1, [0.5, 0.92, 0.96]), (2, [0.5, 0.85, 0.91]))
            for n, acc in zip((20, 30, 40), curve, strict=True)]
    table = protocol_table(rows, [0.90, 0.95])
    # seed 1 reaches 90% at 30 and 95% at 40; seed 2 reaches 90% at 40 and never 95%
    assert ("| MNIST | S | 2 | 35 | 35 [32, 38] | never (1 of 2 seeds) | never [never, never] |"
            in table)
    assert "6.50% ± 3.54% (40 labels)" in table
    assert "| MNIST | S | 2 | never (2 of 2 seeds) | never [never, never] |" in protocol_table(
        rows, [0.99])
    per_seed = seed_table(rows, [0.90, 0.95]).splitlines()
    assert per_seed[2:] == ["| MNIST | S | 1 | 30 | 40 | 4.00% (40 labels) |",
                            "| MNIST | S | 2 | 40 | never | 9.00% (40 labels) |"]


def test_export_publishes_only_the_seeds_whose_runs_are_all_complete(tmp_path, capsys):
    path = write_config(tmp_path, seeds="[1, 2]")
    out, docs = tmp_path / "out", tmp_path / "docs" / "tiny"
    run_experiment(load_config(path), out, config_text=path.read_text())
    # seed 2 of MarginSampling stopped after round 1, as an interrupted experiment leaves it
    stopped = out / "runs" / run_id("digits", "MarginSampling", 2) / "rounds.csv"
    lines = stopped.read_text().splitlines()
    stopped.write_text("\n".join(lines[:3]) + "\n")  # header, rounds 0 and 1
    assert published_main([str(out), "--export", str(docs), "--targets", "0.5"]) == 0
    assert "exported seeds 1 to" in capsys.readouterr().out
    rows = read_rows(docs / "results.csv")
    assert {r["seed"] for r in rows} == {1} and len(rows) == 2 * 4  # 2 strategies x 4 rounds
    assert rows == sorted(rows, key=lambda r: (r["strategy"], r["round"]))
    manifest = json.loads((docs / "manifest.json").read_text())
    assert manifest["published_seeds"] == [1]
    progress = {run["id"]: (run["rounds_done"], run["complete"]) for run in manifest["runs"]}
    assert progress[run_id("digits", "MarginSampling", 2)] == (1, False)
    assert progress[run_id("digits", "RandomSampling", 2)] == (3, True)
    assert (docs / "config.toml").read_text() == path.read_text()
    for run in ("RandomSampling", "MarginSampling"):  # seed 1 loses its rows too
        (out / "runs" / run_id("digits", run, 1) / "rounds.csv").write_text(lines[0] + "\n")
    with pytest.raises(DeepALError, match="has no seed whose runs are all complete yet"):
        export_complete_seeds(out, tmp_path / "none")
    with pytest.raises(DeepALError, match="has no manifest.json: give an experiment's output"):
        export_complete_seeds(tmp_path, tmp_path / "none")


def test_a_session_exported_while_running_is_listed_once_with_its_last_update(tmp_path):
    path = write_config(tmp_path, seeds="[1, 2]")
    out, docs = tmp_path / "out", tmp_path / "docs" / "tiny"
    run_experiment(load_config(path), out, config_text=path.read_text())
    # export while seed 2 is still running: one of its runs has only rounds 0 and 1
    running = out / "runs" / run_id("digits", "MarginSampling", 2) / "rounds.csv"
    finished = running.read_text()
    running.write_text("\n".join(finished.splitlines()[:3]) + "\n")
    assert export_complete_seeds(out, docs) == [1]
    # the same session goes on, finishes seed 2 and updates the manifest
    running.write_text(finished)
    manifest = json.loads((out / "manifest.json").read_text())
    session = manifest["sessions"][-1]
    later = {**session, "updated": "2099-01-01T00:00:00+0000"}
    (out / "manifest.json").write_text(json.dumps({**manifest, "sessions": [later]}))
    assert export_complete_seeds(out, docs) == [1, 2]
    exported = json.loads((docs / "manifest.json").read_text())
    assert exported["sessions"] == [later] and exported["published_seeds"] == [1, 2]
    # a session with another start is another session, listed after the first
    other = {**later, "started": "2099-01-02T00:00:00+0000"}
    (out / "manifest.json").write_text(json.dumps({**manifest, "sessions": [other]}))
    export_complete_seeds(out, docs)
    assert json.loads((docs / "manifest.json").read_text())["sessions"] == [later, other]
    # exporting an older copy of the output again does not take the session back in time
    (out / "manifest.json").write_text(json.dumps(manifest))
    export_complete_seeds(out, docs)
    assert json.loads((docs / "manifest.json").read_text())["sessions"] == [later, other]


def test_seeds_run_apart_and_exported_together_equal_one_run_of_all(tmp_path, capsys):
    from deepal.cli import main as deepal_main

    path = write_config(tmp_path, seeds="[1, 2]")
    docs = tmp_path / "docs" / "tiny"
    together = tmp_path / "together"
    run_experiment(load_config(path), together)
    for seed in (2, 1):  # two machines, one seed each, exporting in turn
        out = tmp_path / f"seed{seed}"
        assert deepal_main(["experiment", str(path), "--output", str(out), "--quiet",
                            "--seeds", str(seed)]) == 0
        assert "2 runs complete" in capsys.readouterr().out  # only this seed's runs
        ran = {r["seed"] for r in read_rows(out / "results.csv")}
        assert ran == {seed}
        manifest = json.loads((out / "manifest.json").read_text())
        assert len(manifest["runs"]) == 4  # the manifest still lists every run of the config
        assert published_main([str(out), "--export", str(docs)]) == 0
    assert f"exported seeds 1 to {docs}, which now holds seeds 1, 2" in capsys.readouterr().out
    rows = read_rows(docs / "results.csv")
    assert comparable(rows) == comparable(read_rows(together / "results.csv"))
    exported = json.loads((docs / "manifest.json").read_text())
    assert exported["published_seeds"] == [1, 2] and len(exported["sessions"]) == 2
    assert all(run["complete"] for run in exported["runs"])
    # an export of other settings is refused, not mixed in
    other = write_config(tmp_path, seeds="[1, 2]", epochs=2, name="other.toml")
    run_experiment(load_config(other), tmp_path / "other", seeds=[1])
    with pytest.raises(DeepALError, match="holds an export of other settings"):
        export_complete_seeds(tmp_path / "other", docs)
    assert comparable(read_rows(docs / "results.csv")) == comparable(rows)
    with pytest.raises(DeepALError, match=r"seeds \[7\] are not among the config's seeds"):
        run_experiment(load_config(path), tmp_path / "seven", seeds=[7])


def _validated_config(folder: Path, strategies: str = '["BALDDropout"]') -> Path:
    path = write_config(folder, strategies=strategies, seeds="[3]",
                        budget_line="n_round = 3", epochs=5,
                        extra_training="validation_size = 100\npatience = 2")
    text = path.read_text().replace("n_init_labeled = 40",
                                    'n_init_labeled = 40\ninitial = "balanced"')
    path.write_text(text)
    return path


def test_fixed_validation_set_is_never_labeled_or_queried(tmp_path):
    config = load_config(_validated_config(tmp_path, '["BALDDropout", "RandomSampling"]'))
    run_experiment(config, tmp_path / "out")
    pool = run_pool(config, "digits", 3)
    assert len(pool.validation_idxs) == 100 and pool.data.n_pool == pool.full.n_pool - 100
    assert not set(pool.validation_idxs) & set(pool.pool_idxs)
    rows = read_rows(tmp_path / "out" / "results.csv")
    assert [r["n_labeled"] for r in rows if r["strategy"] == "BALDDropout"] == [40, 60, 80, 100]
    queried = {i for r in rows for i in r["queried"]}
    assert queried and not queried & set(pool.validation_idxs.tolist())
    for strategy in ("BALDDropout", "RandomSampling"):
        store = RunStore(tmp_path / "out", run_id("digits", strategy, 3))
        recorded = (store.folder / VALIDATION_FILE).read_text().split()
        assert list(map(int, recorded)) == pool.validation_idxs.tolist()
        labeled = pool.pool_idxs[store.load()["labeled"]]
        assert not set(labeled) & set(pool.validation_idxs)
        first = [r for r in rows if r["round"] == 0 and r["strategy"] == strategy]
        assert first[0]["epochs_trained"] <= 5  # early-stopped on the validation set


def test_fixed_validation_run_resumes_to_the_same_results(tmp_path):
    config = load_config(_validated_config(tmp_path))
    whole = tmp_path / "whole"
    run_experiment(config, whole)
    part = tmp_path / "part"
    shorter = config.replaced(loop={"n_round": 1, "budget": None})
    run_experiment(shorter, part)
    # continue the 1-round run to 3 rounds from its checkpoint (same settings but budget)
    checkpoint = RunStore(part, run_id("digits", "BALDDropout", 3)).load()
    assert checkpoint["round"] == 1
    resumed = tmp_path / "resumed"
    shutil.copytree(part, resumed)
    for path in (resumed / "runs").rglob("checkpoint.pt"):
        blob = torch.load(path, weights_only=False)
        blob["settings"] = RunStore(whole, run_id("digits", "BALDDropout", 3)).load()["settings"]
        torch.save(blob, path)
    run_experiment(config, resumed)
    assert comparable(read_rows(resumed / "results.csv")) == comparable(
        read_rows(whole / "results.csv"))


def test_config_checks_the_new_options(tmp_path):
    both = write_config(tmp_path, extra_training="validation_size = 10\n"
                        "validation_fraction = 0.1")
    with pytest.raises(ConfigError, match="both validation_fraction and validation_size"):
        load_config(both)
    bad = write_config(tmp_path, extra_training="weight_decay_per_example = -1")
    with pytest.raises(ConfigError, match="weight_decay_per_example"):
        load_config(bad)
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace("n_init_labeled = 40", 'n_init_labeled = 40\n'
                                             'initial = "stratified"'))
    with pytest.raises(ConfigError, match="initial: unknown initial: choose one of random, "
                                          "balanced, got 'stratified'"):
        load_config(path)
    path.write_text(path.read_text().replace('"stratified"', '"balanced"')
                    .replace("n_init_labeled = 40", "n_init_labeled = 45"))
    from deepal.experiments.runner import check_experiment
    with pytest.raises(ConfigError, match="multiple of 10"):
        check_experiment(load_config(path), tmp_path / "out")


def test_a_fixed_length_epoch_visits_every_example_evenly():
    generator = torch.Generator().manual_seed(0)
    order = epoch_order(7, generator, epoch_samples=30)
    assert len(order) == 30
    assert sorted(np.bincount(order.numpy(), minlength=7).tolist()) == [4, 4, 4, 4, 4, 5, 5]
    assert sorted(epoch_order(7, generator, epoch_samples=5).tolist()) == list(range(7))
    assert sorted(epoch_order(7, generator).tolist()) == list(range(7))


class _StepCounter(TrainingHook):
    def __init__(self) -> None:
        self.labels: list[int] = []

    def after_step(self, step: TrainStep) -> None:
        self.labels += step.y.tolist()


@pytest.mark.parametrize("plain_dataset", [False, True])
def test_epoch_samples_make_many_steps_from_few_labels(plain_dataset: bool):
    x, y = np.random.default_rng(0).normal(size=(10, 2)).astype(np.float32), np.arange(10) % 3
    data = PlainDataset(x, y) if plain_dataset else TensorHandler(x, y)
    counter = _StepCounter()
    net = Net(lambda: TinyNet(n_features=2), {"n_epoch": 2, "epoch_samples": 100,
                                      "train_args": {"batch_size": 16}}, device="cpu")
    net.training_hooks.append(counter)
    net.train(data)
    # 2 epochs of 100 examples: each of the 10 labels 20 times, in batches of at most 16
    assert len(counter.labels) == 200
    assert np.bincount(counter.labels).tolist() == [80, 60, 60]
    one_pass = Net(lambda: TinyNet(n_features=2), {"n_epoch": 2, "epoch_samples": 4}, device="cpu")
    one_pass.training_hooks.append(counter := _StepCounter())
    one_pass.train(data)
    assert len(counter.labels) == 20  # fewer epoch_samples than labels: a plain pass


def test_epoch_samples_and_monitor_are_checked(tmp_path):
    for params, message in (({"epoch_samples": 0}, "epoch_samples: must be an integer >= 1"),
                            ({"monitor": "f1"}, "monitor: unknown monitor: choose one of loss, "
                                                "accuracy, got 'f1'")):
        with pytest.raises(DeepALError, match=message):
            Net(lambda: TinyNet(n_features=2), params, device="cpu")
    for line, message in (("epoch_samples = 0", "epoch_samples"),
                          ('monitor = "f1"', "monitor: unknown monitor: choose one of loss")):
        with pytest.raises(ConfigError, match=message):
            load_config(write_config(tmp_path, extra_training=line))
    config = load_config(write_config(tmp_path, extra_training='epoch_samples = 512\n'
                                                               'monitor = "accuracy"'))
    assert (config.training.epoch_samples, config.training.monitor) == (512, "accuracy")
    plain = load_config(write_config(tmp_path))
    # at their defaults the options stay out of the settings, so earlier results resume
    assert "monitor" not in plain.run_settings()["training"]
    assert "epoch_samples" not in plain.run_settings()["training"]
    assert config.run_settings()["training"]["epoch_samples"] == 512


def test_test_mc_samples_test_the_mean_of_mc_dropout_samples(monkeypatch):
    from deepal.experiments import loop

    calls: list[tuple[int, int]] = []

    class Spy:
        """The consistent MC-dropout estimate the loop tests with, recording its calls."""

        def __init__(self, net, n_samples, seed=None):
            calls.append((n_samples, seed))

        def mean(self, data):  # the answer: every test label right
            return torch.nn.functional.one_hot(torch.as_tensor(data_set.Y_test), 3).float()

    monkeypatch.setattr(loop, "ConsistentMCDropoutPosterior", Spy)
    x, y = blobs(120, seed=1)
    data_set = Data(x, y, *blobs(60, seed=2))
    data_set.initialize_labels(12, random_state=0)
    strategy = RandomSampling(data_set, Net(TinyNet, {"n_epoch": 1}, device="cpu"),
                              random_state=0)
    rounds = run_loop(strategy, 10, 1, test_mc_samples=7)
    assert [r.test_accuracy for r in rounds] == [1.0, 1.0]
    # 7 consistent masks, with a new seed each round (training moved the global generator)
    assert [n for n, _ in calls] == [7, 7] and all(isinstance(s, int) for _, s in calls)
    assert calls[0][1] != calls[1][1]
    calls.clear()
    rounds = run_loop(strategy, 10, 1)  # the trained network itself, one epoch: not perfect
    assert calls == [] and all(r.test_accuracy < 1.0 for r in rounds)


def test_the_mc_test_draws_nothing_from_the_global_generator():
    x, y = blobs(120, seed=1)
    data = Data(x, y, *blobs(60, seed=2))
    data.initialize_labels(12, random_state=0)
    strategy = RandomSampling(data, Net(TinyNet, {"n_epoch": 1}, device="cpu"), random_state=0)
    torch.manual_seed(0)
    strategy.train()
    state = torch.get_rng_state()
    first = strategy.predict_prob_dropout(data.get_test_data(), n_drop=5, seed=11)
    accuracy, _ = _test(strategy, mc_samples=5)
    assert torch.equal(torch.get_rng_state(), state)
    assert 0.0 <= accuracy <= 1.0
    # the same seed gives the same masks: consistent dropout, reproducible
    torch.testing.assert_close(
        strategy.predict_prob_dropout(data.get_test_data(), n_drop=5, seed=11), first)


def test_test_mc_samples_in_a_config(tmp_path):
    path = write_config(tmp_path, strategies='["RandomSampling"]', seeds="[1]",
                        budget_line="n_round = 1\ntest_mc_samples = 30", epochs=3)
    config = load_config(path)
    assert config.loop.test_mc_samples == 30
    assert smoke_config(config).loop.test_mc_samples == 4
    plain_test = config.replaced(loop={"test_mc_samples": None})
    assert "test_mc_samples" not in plain_test.run_settings()
    run_experiment(config, tmp_path / "mc")
    run_experiment(plain_test, tmp_path / "plain")
    mc, plain = (read_rows(tmp_path / name / "results.csv") for name in ("mc", "plain"))
    # the same training, tested two ways
    assert [r["epochs_trained"] for r in mc] == [r["epochs_trained"] for r in plain]
    assert all(a["test_loss"] != b["test_loss"] for a, b in zip(mc, plain, strict=True))
    with pytest.raises(ConfigError,
                       match=r"\[loop\] test_mc_samples: must be an integer >= 1, got 0"):
        load_config(write_config(tmp_path, budget_line="n_round = 1\ntest_mc_samples = 0"))
    no_dropout = write_config(tmp_path, budget_line="n_round = 1\ntest_mc_samples = 5",
                              extra_training='net = "torch.nn:Identity"')
    with pytest.raises(ConfigError, match="test_mc_samples needs dropout layers, and "
                                          "Identity has none"):
        run_experiment(load_config(no_dropout), tmp_path / "none")
