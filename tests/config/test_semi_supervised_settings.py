"""``[training.semi_supervised]``: read from TOML, given to the net as its ``semi_supervised``
parameter, part of a run's settings only when set (earlier results keep resuming), and a
project's setting."""

from __future__ import annotations

import pytest

from deepal.config import ConfigError, validated
from deepal.config.project import ProjectSettings
from deepal.config.training import SemiSupervised
from deepal.experiments.config import load_config
from deepal.experiments.run import build_net, net_params

CONFIG = """
name = "semi"
datasets = ["digits"]
strategies = ["RandomSampling"]
seeds = [1]

[loop]
n_init_labeled = 20
n_query = 10
n_round = 1

[training]
epochs = 2

[training.semi_supervised]
method = "fixmatch"
threshold = 0.9
mu = 3
weight = 0.5
steps_per_epoch = 40
"""


def test_the_toml_table_reaches_the_nets_params(tmp_path):
    path = tmp_path / "semi.toml"
    path.write_text(CONFIG, encoding="utf-8")
    config = load_config(path)
    semi = config.training.semi_supervised
    assert semi == SemiSupervised(method="fixmatch", threshold=0.9, mu=3, weight=0.5,
                                  steps_per_epoch=40)
    expected = {"method": "fixmatch", "threshold": 0.9, "mu": 3, "weight": 0.5,
                "steps_per_epoch": 40, "flip": False}
    assert net_params(config, "digits")["semi_supervised"] == expected
    assert build_net(config, "digits").params["semi_supervised"] == expected
    assert config.run_settings()["training"]["semi_supervised"] == expected


def test_without_the_table_the_runs_settings_are_as_before(tmp_path):
    path = tmp_path / "plain.toml"
    path.write_text(CONFIG.split("[training.semi_supervised]")[0], encoding="utf-8")
    config = load_config(path)
    assert config.training.semi_supervised is None
    assert "semi_supervised" not in config.run_settings()["training"]
    assert "semi_supervised" not in net_params(config, "digits")


def test_an_empty_table_takes_fixmatchs_defaults(tmp_path):
    path = tmp_path / "defaults.toml"
    path.write_text(CONFIG.split("method")[0], encoding="utf-8")
    semi = load_config(path).training.semi_supervised
    assert semi is not None
    assert (semi.method, semi.threshold, semi.mu, semi.weight) == ("fixmatch", 0.95, 7, 1.0)


def test_a_bad_value_in_the_table_is_named(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(CONFIG.replace("threshold = 0.9", "threshold = 1.5"), encoding="utf-8")
    with pytest.raises(ConfigError, match="semi_supervised.threshold"):
        load_config(path)


def test_a_project_keeps_its_semi_supervised_setting():
    settings = validated(ProjectSettings, {"kind": "images", "source": "/data", "classes":
                                           ["a", "b"], "semi_supervised": {"mu": 2}})
    assert settings.semi_supervised == SemiSupervised(mu=2)
    again = validated(ProjectSettings, settings.model_dump())
    assert again == settings
