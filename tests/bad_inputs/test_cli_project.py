"""The project commands (``deepal project init``, ``query``, ``status``, ``export``) and
``Project.init`` in Python: a bad option, data file or table is refused in one line, before
the project folder is made, and a project's database is never changed by a refused command."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from refusals import command_refuses, fuzz, refused, tree

from deepal.labeling import Project

N_ITEMS = 12

not_an_integer = st.sampled_from(["", "1.5", "nan", "inf", "x", "1e3", "0x3"])

BAD_INIT = {
    "--classes": st.sampled_from(["", "a", "a,a", ",", "a,,b", " , "]),
    "--kind": st.sampled_from(["image", "csv", "", "npz"]),
    "--net": st.sampled_from(["ResNet", "", "os:system"]),
    "--model": st.sampled_from(["svm", "", "sklearn.svm:SVC", "RandomForest"]),
    "--strategy": st.sampled_from(["NoSuchSampling", "", "x:y:z", "deepal:Data"]),
    "--image-size": st.one_of(st.integers(max_value=0).map(str), not_an_integer),
    "--channels": st.sampled_from(["2", "0", "rgb", ""]),
    "--n-epoch": st.one_of(st.integers(max_value=0).map(str), not_an_integer),
    "--warm-start-epochs": st.one_of(st.integers(max_value=0).map(str), not_an_integer),
    "--seed": st.one_of(st.integers(max_value=-1).map(str),
                        st.integers(min_value=2**32).map(str), not_an_integer),
    "--label-column": st.sampled_from(["nope", ""]),
    "--test": st.sampled_from(["missing.npz", "pool.npz/x", "."]),
    # The default strategy takes no features: asking for them would do nothing.
    "--features": st.sampled_from(["SimCLR", "", "self_supervised", "self-supervised"]),
}


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pool")
    np.savez(root / "pool.npz", X=np.random.default_rng(0).normal(size=(N_ITEMS, 3)))
    return root / "pool.npz"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, pool: Path) -> Project:
    return Project.init(tmp_path_factory.mktemp("made") / "proj", pool, classes=["x", "y"])


@fuzz(80)
@given(option=st.sampled_from(sorted(BAD_INIT)), data=st.data())
def test_project_init_refuses_a_bad_option_before_making_the_folder(tmp_path, capsys, pool,
                                                                    option, data):
    value = data.draw(BAD_INIT[option])
    if option == "--test" and value != ".":
        value = str(pool.parent / value)
    arguments = {"--data": str(pool), "--classes": "x,y", option: value}
    argv = ["project", "init", str(tmp_path / "proj"),
            *[part for key, v in arguments.items() for part in (key, v)]]
    command_refuses(argv, capsys, "deepal project init", f"bad {option}",
                    watched=[tmp_path, pool.parent])


@fuzz(40)
@given(raw=st.binary(max_size=200), suffix=st.sampled_from([".npz", ".npy", ".csv",
                                                            ".parquet", ".txt"]))
def test_project_init_refuses_a_data_file_it_cannot_read(tmp_path, capsys, raw, suffix):
    data = tmp_path / f"pool{suffix}"
    data.write_bytes(raw)
    argv = ["project", "init", str(tmp_path / "proj"), "--data", str(data), "--classes", "x,y"]
    if suffix == ".txt" and raw.strip() and _utf8(raw):
        return  # any UTF-8 text is a valid file of texts
    command_refuses(argv, capsys, "deepal project init", f"unreadable {suffix}",
                    watched=[tmp_path])


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


BAD_QUERY = {
    "-n": st.one_of(st.integers(max_value=0).map(str), st.integers(N_ITEMS + 1, 10**20).map(str),
                    not_an_integer),
    "--n-epoch": st.one_of(st.integers(max_value=0).map(str), not_an_integer),
    "--threads": st.one_of(st.integers(max_value=0).map(str), not_an_integer),
    "--device": st.sampled_from(["gpu", "", "cuda:x"]),
    "--strategy": st.sampled_from(["NoSuchSampling", "", "x:y:z", "deepal:Data"]),
}


@fuzz(60)
@given(option=st.sampled_from(sorted(BAD_QUERY)), data=st.data())
def test_query_refuses_a_bad_option_and_leaves_the_project_unchanged(capsys, project, option,
                                                                     data):
    value = data.draw(BAD_QUERY[option])
    command_refuses(["query", "-p", str(project.root), option, value, "--device", "cpu"]
                    if option != "--device" else
                    ["query", "-p", str(project.root), option, value], capsys,
                    "deepal query", f"bad {option}", watched=[project.root])


@pytest.mark.parametrize(("extra", "problem"), [
    (["--net", "MLP"], "a network beside it"),
    (["--strategy", "BALDDropout"], "a strategy that needs a network"),
    (["--strategy", "KCenterGreedy"], "a strategy that needs embeddings"),
    (["--kind", "texts"], "texts"),
])
def test_project_init_refuses_a_model_that_does_not_fit(tmp_path, capsys, pool, extra, problem):
    data = pool if "texts" not in extra else _texts(tmp_path)
    argv = ["project", "init", str(tmp_path / "proj"), "--data", str(data), "--classes", "x,y",
            "--model", "random_forest", *extra]
    command_refuses(argv, capsys, "deepal project init", f"--model with {problem}",
                    watched=[tmp_path, pool.parent])


def _texts(tmp_path: Path) -> Path:
    path = tmp_path / "texts.txt"
    path.write_text("one text\nanother text\n")
    return path


def test_query_refuses_a_strategy_the_model_cannot_serve(capsys, tmp_path, pool):
    made = Project.init(tmp_path / "proj", pool, classes=["x", "y"], model="naive_bayes",
                        strategy="MarginSampling")
    command_refuses(["query", "-p", str(made.root), "-n", "2", "--strategy", "BADGE"], capsys,
                    "deepal query", "--strategy the model cannot serve", watched=[made.root])


def test_commands_on_a_folder_that_is_no_project_are_refused(tmp_path: Path, capsys):
    (tmp_path / "file.txt").write_text("mine")
    (tmp_path / "deepal.sqlite").write_bytes(b"not a database at all")
    for folder in (tmp_path / "missing", tmp_path / "file.txt", tmp_path):
        for command in (["status"], ["query", "-n", "2"], ["export", "-o", str(tmp_path / "o")],
                        ["label", "--port", "0"]):
            command_refuses([*command, "-p", str(folder)], capsys, f"deepal {command[0]}",
                            "not a project", watched=[tmp_path])


@pytest.mark.parametrize("classes", [[], ["x"], ["x", "x"], ["x", ""], [1, 2], "xy",
                                     ["x", "a\nb"]])
def test_project_init_in_python_refuses_bad_classes(tmp_path: Path, pool: Path, classes):
    with refused("Project.init", "bad classes"):
        Project.init(tmp_path / "proj", pool, classes=classes)
    assert not (tmp_path / "proj").exists()


def closed_port() -> str:
    """A port on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


#: Query-backend options a query must refuse, and what the refusal names.
BAD_SHARDING = [
    (["--query-backend", "spark"], "--query-backend: input should be 'local' or 'ray'"),
    (["--query-backend", ""], "--query-backend"),
    (["--shards", "3"], "shards needs a query backend"),
    (["--query-backend", "local", "--shards", "0"], "--shards: must be an integer >= 1"),
    (["--query-backend", "local", "--shards", "-4"], "--shards: must be an integer >= 1"),
    (["--query-backend", "local", "--shards", "two"], "--shards"),
    (["--query-backend", "local", "--shards", str(N_ITEMS + 1)], "exceeds the pool's 12"),
    (["--query-backend", "local", "--query-address", "auto"], "needs backend = \"ray\""),
    (["--query-address", "127.0.0.1:6379"], "needs backend = \"ray\""),
    (["--query-backend", "ray", "--query-address", "nowhere"], "expected auto, HOST:PORT"),
    (["--query-backend", "ray", "--query-address", "127.0.0.1:70000"], "a port from 1"),
    (["--query-backend", "ray", "--query-address", "http://h:1"], "expected auto, HOST:PORT"),
    (["--query-backend", "ray", "--query-address", "127.0.0.1:PORT"],
     "cannot reach the Ray cluster at '127.0.0.1:"),
]


@pytest.mark.parametrize(("options", "message"), BAD_SHARDING)
def test_query_refuses_a_bad_query_backend_and_leaves_the_project_unchanged(
        capsys, project, options, message):
    options = [part.replace("PORT", closed_port()) for part in options]
    line = command_refuses(["query", "-p", str(project.root), "-n", "2", "--device", "cpu",
                            *options],
                           capsys, "deepal query", f"bad {options[-2]}",
                           watched=[project.root])
    assert message in line, line


def test_query_backend_ray_without_ray_installed_is_refused(capsys, project, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    line = command_refuses(["query", "-p", str(project.root), "--query-backend", "ray"], capsys,
                           "deepal query", "Ray missing", watched=[project.root])
    assert 'needs Ray, which is not installed: pip install "deepal[ray]"' in line, line


@pytest.mark.parametrize("sharding", [{"backend": "spark"}, {"shards": 2},
                                      {"backend": "local", "shards": 0},
                                      {"backend": "local", "shards": 2.0},
                                      {"backend": "local", "address": "auto"},
                                      {"backend": "ray", "address": "h:0"},
                                      {"backend": "ray", "cluster": "auto"}, "ray"])
def test_project_query_in_python_refuses_bad_sharding(project, sharding):
    before = tree(project.root)
    with refused("Project.query", "bad sharding"):
        project.query(2, device="cpu", sharding=sharding)
    assert tree(project.root) == before
