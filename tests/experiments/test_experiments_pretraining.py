"""Self-supervised features and weights in experiments: a strategy option asks for the
features, ``[pretraining]`` sets how they are made and may start the classifier from them;
pretraining runs once, before the runs, and the runs read the cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from deepal.config.base import ConfigError
from deepal.experiments.config import load_config, parse_config, smoke_config
from deepal.experiments.pretrained import with_pretraining
from deepal.experiments.run import build_net, run_pool
from deepal.experiments.runner import run_experiment
from deepal.pretraining import pretrain

CONFIG = """
name = "ssl"
datasets = ["digits"]
strategies = ["TypiClust", "ProbCover", "RandomSampling"]
seeds = [1]

[loop]
n_init_labeled = 0
n_query = 10
budget = 20

[training]
epochs = 1
device = "cpu"

[strategy_options.TypiClust]
features = "self-supervised"

[strategy_options.ProbCover]
features = "self-supervised"

[pretraining]
epochs = 1
max_examples = 200
batch_size = 64
cache_dir = "{cache}"
{extra}
"""


def _config(folder: Path, extra: str = "") -> Path:
    path = folder / "ssl.toml"
    path.write_text(CONFIG.format(cache=(folder / "cache").as_posix(), extra=extra))
    return path


def _count_trainings(monkeypatch) -> list[int]:
    calls: list[int] = []
    where = pretrain.__globals__
    real = where["contrastive_train"]
    monkeypatch.setitem(where, "contrastive_train",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def test_strategies_pick_the_first_batch_from_the_pretrained_features(tmp_path, monkeypatch):
    calls = _count_trainings(monkeypatch)
    config = load_config(_config(tmp_path))
    summaries = run_experiment(config, tmp_path / "out")
    assert [s["rounds"] for s in summaries] == [2, 2, 2]
    assert calls == [1]  # once for the data set, before the runs
    run_experiment(config, tmp_path / "again")
    assert calls == [1]  # a second experiment reads the cache
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["config"]["pretraining"]["epochs"] == 1


def test_a_run_takes_its_pools_rows_of_the_features(tmp_path):
    config = load_config(_config(tmp_path)).replaced(training={"validation_size": 100})
    pool = run_pool(config, "digits", 1)
    net = build_net(config, "digits")
    options = with_pretraining(config, "digits", pool, net, {"features": "self-supervised"})
    whole = pretrain(pool.full, "MLP", config.pretraining, dataset="digits", device="cpu")
    assert options["features"].shape == (pool.data.n_pool, 50)
    assert np.array_equal(options["features"], whole.features[pool.pool_idxs])
    assert with_pretraining(config, "digits", pool, net, {"k": 1}) == {"k": 1}


def test_init_classifier_starts_every_round_from_the_pretrained_weights(tmp_path):
    config = load_config(_config(tmp_path, "init_classifier = true"))
    pool = run_pool(config, "digits", 1)
    net = build_net(config, "digits")
    with_pretraining(config, "digits", pool, net, {})
    weights = pretrain(pool.full, "MLP", config.pretraining, dataset="digits",
                       device="cpu").encoder_state
    for _ in range(2):
        module = net.net()
        assert all(torch.equal(module.state_dict()[k], weights[k]) for k in weights)
    summaries = run_experiment(config.replaced(strategies=["RandomSampling"],
                                               strategy_options={},
                                               loop={"n_init_labeled": 10}), tmp_path / "out")
    assert summaries[0]["rounds"] == 1


def test_features_without_a_table_use_the_defaults_and_smoke_caps_the_epochs(tmp_path):
    raw = {"datasets": ["digits"], "strategies": ["TypiClust"], "seeds": [1],
           "loop": {"n_init_labeled": 0, "n_query": 10, "n_round": 1},
           "strategy_options": {"TypiClust": {"features": "self-supervised"}}}
    config = parse_config(raw)
    assert config.pretraining is None
    assert smoke_config(config).pretraining.epochs == 1
    assert smoke_config(parse_config({**raw, "strategy_options": {}})).pretraining is None


def test_the_settings_hash_ignores_the_cache_folder_only(tmp_path):
    config = load_config(_config(tmp_path))
    moved = config.replaced(pretraining={"cache_dir": str(tmp_path / "elsewhere")})
    other = config.replaced(pretraining={"temperature": 0.1})
    assert moved.run_settings("TypiClust") == config.run_settings("TypiClust")
    assert other.run_settings("TypiClust") != config.run_settings("TypiClust")
    plain = config.replaced(pretraining=None, strategy_options={},
                            strategies=["RandomSampling"])
    assert "pretraining" not in plain.run_settings("RandomSampling")


@pytest.mark.parametrize("extra, raw_change, message", [
    ("", {"strategy_options": {}}, "used by nothing"),
    ("init_classifier = true\nnet = \"MNIST_Net\"", {}, "must be the classifier's"),
    ("", {"strategy_options": {"TypiClust": {"features": "simclr"}}}, "self-supervised"),
])
def test_inconsistent_pretraining_settings_are_refused(tmp_path, extra, raw_change, message):
    import tomllib

    raw = tomllib.loads(_config(tmp_path, extra).read_text())
    raw.update(raw_change)
    with pytest.raises(ConfigError, match=message):
        parse_config(raw)
