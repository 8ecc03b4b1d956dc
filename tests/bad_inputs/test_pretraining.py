"""Self-supervised pretraining: bad settings, a cache folder that cannot be one, an unknown or
unfitting network, in Python (``deepal.pretrain``) and in an experiment's ``[pretraining]``
table, are each refused in one line before anything is written."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from refusals import command_refuses, fuzz, refused, tree
from test_cli_experiment import GOOD, toml

import deepal
from deepal.pretraining import pretrain

text = st.text(max_size=5)
not_a_count = st.one_of(st.integers(max_value=0), st.floats(), st.booleans(), text, st.none())
not_a_rate = st.one_of(st.floats(max_value=0.0), st.sampled_from([math.nan, math.inf]),
                       st.booleans(), text, st.integers(max_value=-1))

BAD = {
    "epochs": not_a_count,
    "batch_size": st.one_of(not_a_count, st.just(1)),
    "max_examples": st.one_of(st.integers(max_value=1), st.floats(), text),
    "temperature": not_a_rate,
    "lr": not_a_rate,
    "weight_decay": st.one_of(st.floats(max_value=-1e-9), st.sampled_from([math.nan]), text),
    "projection_dim": not_a_count,
    "min_scale": st.one_of(st.floats(max_value=0.0), st.floats(min_value=1.0001), text),
    "jitter": st.one_of(st.floats(max_value=-1e-9), st.floats(min_value=1.0001), text),
    "flip": st.one_of(st.integers(), text),
    "normalize": st.one_of(st.integers(), text),
    "seed": st.one_of(st.integers(max_value=-1), st.integers(min_value=2**32), text),
    "net": st.one_of(st.just(""), st.integers()),
    "init_classifier": st.one_of(st.integers(), text),
    "unknown": st.integers(),
}


@pytest.fixture(scope="module")
def digits() -> deepal.Data:
    return deepal.get_dataset("digits")


@fuzz(90)
@given(key=st.sampled_from(sorted(BAD)), data=st.data())
def test_a_bad_setting_is_refused_before_anything_is_written(digits, tmp_path, key, data):
    settings = {"epochs": 1, key: data.draw(BAD[key])}
    before = tree(tmp_path)
    with refused("deepal.pretrain", f"bad {key}") as error:
        pretrain(digits, "MLP", settings, cache_dir=tmp_path / "cache", device="cpu")
    assert key in str(error.value) or "unknown key" in str(error.value)
    assert tree(tmp_path) == before


@pytest.mark.parametrize("net, match", [("NoSuchNet", "unknown network"),
                                        ("MNIST_Net", "does not take the pool's inputs"),
                                        (None, "needs an architecture"),
                                        ("os:getcwd", "get_embedding_dim")])
def test_an_unknown_or_unfitting_network_is_refused(digits, tmp_path, net, match):
    with refused("deepal.pretrain", "bad net", match=match):
        pretrain(digits, net, {"epochs": 1}, cache_dir=tmp_path / "cache", device="cpu")
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("settings", [[1, 2], "epochs=1", 3])
def test_settings_that_are_not_a_table_are_refused(digits, tmp_path, settings):
    with refused("deepal.pretrain", "settings not a dict", match="settings"):
        pretrain(digits, "MLP", settings, cache_dir=tmp_path, device="cpu")


@pytest.mark.parametrize("device", ["gpu", "cuda:x", ""])
def test_an_unknown_device_is_refused(digits, tmp_path, device):
    with refused("deepal.pretrain", "bad device", match="device"):
        pretrain(digits, "MLP", {"epochs": 1}, cache_dir=tmp_path / "cache", device=device)
    assert not (tmp_path / "cache").exists()


def test_a_cache_folder_that_is_a_file_is_refused(digits, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    for where in (tmp_path / "file", tmp_path / "file" / "below"):
        with refused("deepal.pretrain", "cache_dir a file", match="is a file"):
            pretrain(digits, "MLP", {"epochs": 1}, cache_dir=where, device="cpu")
    assert (tmp_path / "file").read_text() == "not a folder"


def _experiment(pretraining: dict[str, Any], options: dict[str, Any] | None = None
                ) -> dict[str, Any]:
    config = {**GOOD, "strategies": ["TypiClust"], "pretraining": pretraining,
              "strategy_options": {"TypiClust": options or {"features": "self-supervised"}}}
    return config


def _toml(config: dict[str, Any]) -> str:
    options = config.pop("strategy_options")
    lines = [toml(config)]
    for name, values in options.items():
        lines.append(toml({f"strategy_options.{name}": values}).lstrip())
    return "\n".join(lines)


@fuzz(40)
@given(key=st.sampled_from(sorted(BAD)), data=st.data())
def test_a_bad_pretraining_table_is_refused_by_deepal_experiment(tmp_path, capsys, key, data):
    path = tmp_path / "bad.toml"
    value = data.draw(BAD[key].filter(lambda v: v is not None))  # TOML has no null
    path.write_text(_toml(_experiment({"epochs": 1, key: value})), encoding="utf-8")
    line = command_refuses(["experiment", str(path), "--output", str(tmp_path / "out"),
                            "--quiet"], capsys, "deepal experiment", f"bad pretraining {key}",
                           watched=[tmp_path])
    assert "pretraining" in line


@pytest.mark.parametrize("pretraining, options, match", [
    ({"net": "NoSuchNet"}, None, "unknown network"),
    ({"net": "MNIST_Net"}, None, "cannot pretrain on digits"),
    ({"epochs": 1}, {"features": "pca"}, "self-supervised"),
    ({"epochs": 1}, {"k_neighbours": 5}, "used by nothing"),
    ({"init_classifier": True, "net": "MNIST_Net"}, {"k_neighbours": 5}, "classifier's"),
])
def test_inconsistent_experiments_are_refused(tmp_path, capsys, pretraining, options, match):
    path = tmp_path / "bad.toml"
    path.write_text(_toml(_experiment(pretraining, options)), encoding="utf-8")
    line = command_refuses(["experiment", str(path), "--output", str(tmp_path / "out"),
                            "--quiet"], capsys, "deepal experiment", "inconsistent pretraining",
                           watched=[tmp_path])
    assert match in line, line


def test_a_cache_folder_that_is_a_file_is_refused_by_deepal_experiment(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    path = tmp_path / "bad.toml"
    path.write_text(_toml(_experiment({"cache_dir": str(tmp_path / "file")})),
                    encoding="utf-8")
    line = command_refuses(["experiment", str(path), "--output", str(tmp_path / "out"),
                            "--quiet"], capsys, "deepal experiment", "cache_dir a file",
                           watched=[tmp_path])
    assert "is a file" in line
