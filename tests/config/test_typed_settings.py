"""The typed settings: one model per table, one clear line per bad value, naming the key."""

from __future__ import annotations

import math

import pytest

from deepal import Net
from deepal.config import ConfigError, validated
from deepal.config.experiment import ExperimentConfig, LoopSettings
from deepal.config.training import NetParams, TrainingSettings, check_optimizer_args
from deepal.experiments.config import parse_config
from deepal.nets.params import checked_params

from conftest import TinyNet


def _raw(**tables) -> dict:
    return {"datasets": ["digits"], "strategies": ["RandomSampling"], "seeds": [1],
            "loop": {"n_init_labeled": 10, "n_query": 5, "n_round": 2}, **tables}


@pytest.mark.parametrize("training, message", [
    ({"lr": math.nan}, "[training] lr: must be a finite number > 0, got nan"),
    ({"lr": math.inf}, "[training] lr: must be a finite number > 0, got inf"),
    ({"lr": 0}, "[training] lr: must be a finite number > 0, got 0"),
    ({"lr": "0.1"}, "[training] lr: input should be a valid number, got '0.1'"),
    ({"epochs": 0}, "[training] epochs: must be an integer >= 1, got 0"),
    ({"epochs": 2.5}, "[training] epochs: input should be a valid integer, got 2.5"),
    ({"epochs": True}, "[training] epochs: input should be a valid integer, got True"),
    ({"weight_decay_per_example": -1.0},
     "[training] weight_decay_per_example: must be a finite number >= 0, got -1.0"),
    ({"validation_fraction": 1.0}, "[training] validation_fraction: must be a number in [0, 1)"),
    ({"optimizer": "Adam", "optimizer_args": {"momentum": 0.9}},
     "[training] optimizer_args: Adam takes no keyword 'momentum': its keywords are lr, betas"),
    ({"optimizer": "SGD", "optimizer_args": {"weight_decay": math.nan}},
     "[training] optimizer_args: weight_decay must be finite, got nan"),
    ({"device": "gpu"}, "[training] device: unknown device: use cpu, cuda, cuda:N or mps"),
    ({"epoch": 3}, "unknown key '[training] epoch': check its spelling"),
])
def test_a_bad_training_setting_is_one_line_naming_its_key(training, message):
    with pytest.raises(ConfigError) as error:
        parse_config(_raw(training=training))
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


@pytest.mark.parametrize("raw, message", [
    (_raw(loop={"n_init_labeled": 10, "n_query": 0, "n_round": 2}),
     "[loop] n_query: must be an integer >= 1, got 0"),
    (_raw(loop={"n_init_labeled": 10, "n_query": 5}), "[loop] needs exactly one of n_round"),
    ({**_raw(), "datasets": ["digits", "digits"]}, "datasets: lists digits more than once"),
    ({**_raw(), "seeds": [1, "2"]}, "seeds.1: input should be a valid integer, got '2'"),
    ({**_raw(), "strategy_options": {"BALDDropout": {"n_drop": 5}}},
     "[strategy_options.BALDDropout] names no strategy of this experiment (RandomSampling)"),
    ({**_raw(), "target_accuracy": 1.5}, "target_accuracy must be in (0, 1], got 1.5"),
    (_raw(resources={"cpus_per_run": -1}), "[resources] cpus_per_run: must be a finite number"),
    (_raw(data={"n_pool": 0}), "[data] n_pool: must be an integer >= 1, got 0"),
    ({k: v for k, v in _raw().items() if k != "loop"}, "the config needs a [loop] table"),
])
def test_a_bad_experiment_setting_is_one_line_naming_its_key(raw, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")
                       .replace(")", r"\)")):
        parse_config(raw)


def test_keys_can_be_named_as_the_user_gave_them():
    raw = _raw(loop={"n_init_labeled": 10, "n_query": -3, "n_round": 2})
    with pytest.raises(ConfigError, match="^--n-query: must be an integer >= 1, got -3$"):
        parse_config(raw, names={"[loop] n_query": "--n-query"})


def test_a_single_name_is_a_list_of_one_and_values_keep_their_types():
    config = parse_config({**_raw(training={"lr": 1, "optimizer_args": {"betas": [0.9, 0.99]},
                                            "optimizer": "Adam"}), "strategies": "MarginSampling"})
    assert config.strategies == ("MarginSampling",)
    assert config.training.lr == 1.0 and isinstance(config.training.lr, float)
    assert config.to_dict()["training"]["optimizer_args"] == {"betas": [0.9, 0.99]}


def test_settings_are_frozen_and_replaced_only_through_a_checked_copy():
    config = parse_config(_raw())
    with pytest.raises(ValueError):
        config.loop.n_query = 7  # type: ignore[misc]
    assert config.replaced(loop={"n_query": 10}).query_sizes() == [10, 10]
    with pytest.raises(ConfigError, match="loop.n_query: must be an integer >= 1"):
        config.replaced(loop={"n_query": 0})


def test_the_loop_derives_the_rounds_or_the_budget():
    assert LoopSettings(n_init_labeled=100, n_query=50, budget=225).rounds == 3
    assert LoopSettings(n_init_labeled=100, n_query=50, n_round=2).labels == 200
    assert isinstance(parse_config(_raw()), ExperimentConfig)


def test_net_params_keep_deepal_s_dict_form_and_are_checked_by_the_model():
    params = {"n_epoch": 3, "train_args": {"batch_size": 8, "num_workers": 1},
              "optimizer": "Adam", "optimizer_args": {"lr": 1e-3}}
    merged = checked_params(params)
    assert merged["train_args"] == {"batch_size": 8, "num_workers": 1}  # DeepAL's key, ignored
    assert merged["test_args"] == {"batch_size": 1000} and merged["optimizer"] == "Adam"
    assert validated(NetParams, merged).n_epoch == 3
    for bad, message in (({"n_epoch": -1}, "n_epoch: must be an integer >= 0, got -1"),
                         ({"n_epochs": 3}, "unknown key 'n_epochs'"),
                         ({"train_args": {"batch_size": 0}},
                          "train_args.batch_size: must be an integer >= 1, got 0"),
                         ({"optimizer_args": {"lr": math.nan}},
                          "optimizer_args: lr must be finite, got nan"),
                         ({"optimizer_args": {"lr": 0.1, "betas": (0.9, 0.9)}},
                          "optimizer_args: SGD takes no keyword 'betas'")):
        with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
            Net(TinyNet, bad, device="cpu")


def test_optimizer_keywords_come_from_the_optimizer_s_signature():
    check_optimizer_args("AdamW", {"lr": 0.1, "betas": [0.9, 0.999], "amsgrad": True})
    with pytest.raises(ValueError, match="AdamW takes no keyword 'nesterov': its keywords are "
                                         "lr, betas, eps, weight_decay"):
        check_optimizer_args("AdamW", {"nesterov": True})
    with pytest.raises(ValueError, match="lr must be a finite number > 0, got -1"):
        check_optimizer_args("SGD", {"lr": -1})
    assert TrainingSettings(optimizer="SGD", optimizer_args={"momentum": 0.9}).optimizer == "SGD"
