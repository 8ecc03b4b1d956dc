"""A project's settings: checked by one typed model at ``init`` before anything is written,
checked again whenever the database is opened, and never a way to run code: a database that
names an import path is refused before anything is imported. Threads are recorded per
round, and databases made before that stay readable."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from deepal.cli import main
from deepal.config import ConfigError
from deepal.config.project import ProjectSettings, QueryOptions, StoredProjectSettings
from deepal.errors import DeepALError
from deepal.labeling import Project

MARKER = "planted-module-ran"


def deepal(*args: object) -> int:
    return main([str(a) for a in args])


@pytest.fixture
def pool(tmp_path: Path) -> Path:
    """A .npz pool of 30 feature rows, without labels."""
    path = tmp_path / "pool.npz"
    np.savez(path, X=np.random.default_rng(0).normal(size=(30, 5)).astype(np.float32))
    return path


@pytest.fixture
def planted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A module on sys.path that writes a marker file when imported; the marker's path."""
    folder = tmp_path / "planted"
    folder.mkdir()
    marker = tmp_path / MARKER
    (folder / "planted_module.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n"
        "class Evil:\n    pass\n")
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, "planted_module", raising=False)
    return marker


def edit_meta(project: Path, key: str, value: object, raw: bool = False) -> None:
    """What a hand (or an attacker) does to the database: replace one setting."""
    with sqlite3.connect(project / "deepal.sqlite") as db:
        db.execute("UPDATE meta SET value = ? WHERE key = ?",
                   (value if raw else json.dumps(value), key))


def meta(project: Path) -> dict[str, object]:
    with sqlite3.connect(project / "deepal.sqlite") as db:
        return {k: json.loads(v) for k, v in db.execute("SELECT key, value FROM meta")}


def test_a_database_naming_a_strategy_import_path_runs_no_code(tmp_path, pool, planted, capsys):
    Project.init(tmp_path / "p", pool, classes="a,b")
    edit_meta(tmp_path / "p", "strategy", "planted_module:Evil")
    assert deepal("query", "-n", "3", "-p", tmp_path / "p") == 2
    err = capsys.readouterr().err
    assert "'planted_module:Evil', a class outside deepal" in err
    assert "--strategy planted_module:Evil" in err
    with pytest.raises(DeepALError, match="imports classes only from the command line"):
        Project(tmp_path / "p").query(3)
    assert Project(tmp_path / "p").store.rounds() == []  # refused before anything is written
    assert deepal("status", "-p", tmp_path / "p") == 0  # reading the project imports nothing
    assert "planted_module" not in sys.modules and not planted.exists()


def test_a_database_naming_a_net_import_path_runs_no_code(tmp_path, pool, planted, capsys):
    Project.init(tmp_path / "p", pool, classes="a,b")
    edit_meta(tmp_path / "p", "net", "planted_module:Evil")
    assert deepal("query", "-n", "3", "-p", tmp_path / "p") == 2
    err = capsys.readouterr().err
    assert "holds a setting deepal refuses: net:" in err and "'planted_module:Evil'" in err
    with pytest.raises(ConfigError, match="net"):
        Project(tmp_path / "p")
    assert "planted_module" not in sys.modules and not planted.exists()


def test_a_strategy_typed_on_the_command_line_is_imported(tmp_path, pool, planted, capsys):
    """The user's own class, typed at init, is stored; each query needs it typed again."""
    (planted.parent / "planted" / "mine.py").write_text(
        "from deepal.strategies.random_sampling import RandomSampling\n"
        "class Mine(RandomSampling):\n    pass\n")
    assert deepal("project", "init", tmp_path / "p", "--data", pool, "--classes", "a,b",
                  "--strategy", "mine:Mine") == 0
    assert meta(tmp_path / "p")["strategy"] == "mine:Mine"
    assert deepal("query", "-n", "2", "-p", tmp_path / "p") == 2
    assert "pass it again with --strategy mine:Mine" in capsys.readouterr().err
    assert deepal("query", "-n", "2", "-p", tmp_path / "p", "--strategy", "mine:Mine") == 0
    assert "mine:Mine picked 2" in capsys.readouterr().out
    assert not planted.exists()


@pytest.mark.parametrize("key, value, message", [
    ("strategy", "Nope", "strategy: unknown strategy 'Nope'"),
    ("kind", "video", "kind: input should be 'images', 'table', 'numpy' or 'texts'"),
    ("classes", ["a"], "classes: a project needs at least two classes"),
    ("classes", ["a", "a"], "classes: lists a more than once"),
    ("seed", "1", "seed: input should be a valid integer"),
    ("n_epoch", 0, "n_epoch: must be an integer >= 1"),
    ("channels", 2, "channels: input should be 1 or 3"),
    ("surprise", 1, "unknown key 'surprise'"),
    ("semi_supervised", {"threshold": 2}, "semi_supervised.threshold: must be a probability"),
    ("semi_supervised", "fixmatch", "semi_supervised: input should be a valid dictionary"),
])
def test_a_hand_edited_setting_is_refused_with_its_key(tmp_path, pool, key, value, message):
    Project.init(tmp_path / "p", pool, classes="a,b")
    if key == "surprise":
        with sqlite3.connect(tmp_path / "p" / "deepal.sqlite") as db:
            db.execute("INSERT INTO meta VALUES ('surprise', '1')")
    else:
        edit_meta(tmp_path / "p", key, value)
    with pytest.raises(ConfigError, match="deepal refuses") as refused:
        Project(tmp_path / "p")
    assert message in str(refused.value)


def test_damaged_databases_give_one_clear_error(tmp_path, pool, capsys):
    Project.init(tmp_path / "p", pool, classes="a,b")
    edit_meta(tmp_path / "p", "seed", "{not json", raw=True)
    assert deepal("status", "-p", tmp_path / "p") == 2
    assert "the setting 'seed'" in capsys.readouterr().err
    edit_meta(tmp_path / "p", "seed", 1)
    with sqlite3.connect(tmp_path / "p" / "deepal.sqlite") as db:
        db.execute("DELETE FROM meta WHERE key = 'classes'")
    with pytest.raises(ConfigError, match="classes: field required"):
        Project(tmp_path / "p")
    with sqlite3.connect(tmp_path / "p" / "deepal.sqlite") as db:
        db.execute("INSERT INTO meta VALUES ('classes', '[\"a\", \"b\"]')")
    (tmp_path / "p" / "pool.npz").write_bytes(b"truncated")
    with pytest.raises(DeepALError, match="cannot read the project's pool"):
        Project(tmp_path / "p").query(2)
    (tmp_path / "q").mkdir()
    (tmp_path / "q" / "deepal.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(DeepALError, match="not a readable labelling project database"):
        Project(tmp_path / "q")


@pytest.mark.parametrize("options, message", [
    ({"net": "ResNet"}, "net: input should be 'auto', 'SmallCNN' or 'MLP'"),
    ({"strategy": "Nope"}, "unknown strategy 'Nope'"),
    ({"strategy": "os.system:;rm"}, "strategy: expected a strategy name"),
    ({"n_epoch": 0}, "n_epoch: must be an integer >= 1"),
    ({"image_size": 2}, "image_size: must be between 4 and 4096 pixels"),
    ({"seed": -1}, "seed: must be an integer from 0 to 4294967295"),
    ({"seed": 2**32}, "seed: must be an integer from 0 to 4294967295"),
    ({"kind": "video"}, "kind: input should be"),
    ({"classes": ["a", " "]}, "classes.1: must be a non-empty string"),
    ({"classes": "a"}, "a project needs at least two classes"),
    ({"colour": True}, "unknown key 'colour'"),
])
def test_bad_init_settings_are_refused_before_anything_is_written(tmp_path, pool, options,
                                                                  message):
    options = {"classes": "a,b", **options}
    with pytest.raises(ConfigError) as refused:
        Project.init(tmp_path / "p", pool, **options)
    assert message in str(refused.value)
    assert not (tmp_path / "p").exists()


def test_init_stores_the_checked_settings(tmp_path, pool):
    project = Project.init(tmp_path / "p", pool, classes=" a , b ", strategy="entropysampling",
                           n_epoch=3, seed=5)
    assert isinstance(project.settings, StoredProjectSettings)
    assert project.settings.strategy == "EntropySampling"  # the registry's spelling
    assert project.classes == ["a", "b"]
    stored = meta(tmp_path / "p")
    assert stored["source"] == str(pool.resolve()) and stored["kind"] == "numpy"
    assert (stored["n_epoch"], stored["seed"], stored["net"]) == (3, 5, "auto")


def test_the_settings_models_refuse_what_json_would_smuggle_in():
    base = {"kind": "table", "source": "/t.csv"}
    assert ProjectSettings.model_validate(base).classes is None
    with pytest.raises(ValueError):
        StoredProjectSettings.model_validate(base)  # a stored project knows its classes
    with pytest.raises(ValueError):
        ProjectSettings.model_validate({**base, "seed": True})
    with pytest.raises(ValueError):
        QueryOptions.model_validate({"n": 1, "threads": 0})
    with pytest.raises(ValueError):
        QueryOptions.model_validate({"n": 1})  # the caller says how many threads


def test_threads_are_applied_and_recorded_per_round(tmp_path, pool, monkeypatch, capsys):
    import deepal.labeling.project as project_module

    seen: list[int] = []
    real = project_module.torch_threads

    def spy(n: int):
        seen.append(n)
        return real(n)

    monkeypatch.setattr(project_module, "torch_threads", spy)
    before = torch.get_num_threads()
    Project.init(tmp_path / "p", pool, classes="a,b", n_epoch=1)
    assert deepal("query", "-n", "4", "-p", tmp_path / "p", "--threads", "2") == 0
    Project(tmp_path / "p").label(0, "a", "me")
    Project(tmp_path / "p").label(1, "b", "me")
    assert deepal("query", "-n", "4", "-p", tmp_path / "p") == 0
    assert seen == [2, 1] and torch.get_num_threads() == before
    capsys.readouterr()
    assert deepal("status", "-p", tmp_path / "p", "--json") == 0
    rounds = json.loads(capsys.readouterr().out)["rounds"]
    assert [r["threads"] for r in rounds] == [2, 1]
    assert deepal("export", "-p", tmp_path / "p", "--threads", "3") == 0
    assert seen == [2, 1, 3]
    assert deepal("query", "-n", "1", "-p", tmp_path / "p", "--threads", "0") == 2
    assert "threads: must be an integer >= 1" in capsys.readouterr().err


def test_a_database_made_before_threads_were_recorded_stays_readable(tmp_path, pool):
    project = Project.init(tmp_path / "p", pool, classes="a,b")
    project.query(2)
    with sqlite3.connect(tmp_path / "p" / "deepal.sqlite") as db:  # the older schema
        db.execute("ALTER TABLE rounds DROP COLUMN threads")
    assert [r.threads for r in Project(tmp_path / "p").store.rounds()] == [None]
    Project(tmp_path / "p").query(2, threads=1)
    assert [r.threads for r in Project(tmp_path / "p").store.rounds()] == [None, 1]


def test_the_named_network_is_built_by_default_net(tmp_path, pool):
    pytest.importorskip("PIL", reason='image folders need Pillow: pip install "deepal[images]"')
    from _own_data import CLASSES, write_images

    truth = write_images(tmp_path / "photos", 12, labeled=False, size=8)
    project = Project.init(tmp_path / "p", tmp_path / "photos", classes=CLASSES, net="MLP",
                           image_size=8, n_epoch=1)
    project.label(0, CLASSES[truth[0]], "me")
    project.query(2)
    model = torch.load(tmp_path / "p" / "model.pt", weights_only=True)
    assert model["architecture"] == "MLP" and model["input_shape"] == [3, 8, 8]
    auto = Project.init(tmp_path / "q", tmp_path / "photos", classes=CLASSES, image_size=8)
    assert type(auto.net().net()).__name__ == "SmallCNN"  # auto: images get the CNN
    with pytest.raises(ConfigError, match="net: SmallCNN needs images"):
        Project.init(tmp_path / "r", pool, classes="a,b", net="SmallCNN")
    assert not (tmp_path / "r" / "deepal.sqlite").exists()


def test_a_project_trains_on_its_unlabeled_items_when_asked(tmp_path, pool, capsys):
    assert deepal("project", "init", tmp_path / "p", "--data", pool, "--classes", "a,b",
                  "--semi-supervised", "pseudo_label", "--n-epoch", "2") == 0
    stored = meta(tmp_path / "p")["semi_supervised"]
    assert stored == {"method": "pseudo_label", "threshold": 0.95, "mu": 7, "weight": 1.0,
                      "steps_per_epoch": 100, "flip": False}
    project = Project(tmp_path / "p")
    net = project.net()
    assert net.params["semi_supervised"] == stored
    assert len(net.unlabeled_inputs()) == 30  # nothing labeled yet: every item
    project.label(0, "a", "me")
    project.label(1, "b", "me")
    assert len(project.net().unlabeled_inputs()) == 28
    assert deepal("query", "-n", "3", "-p", tmp_path / "p") == 0
    assert project.train_and_save().exists()
    assert project.store.current_labels().keys() == {0, 1}  # pseudo-labels are never labels
