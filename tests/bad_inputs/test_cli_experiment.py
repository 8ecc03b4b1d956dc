"""``deepal experiment`` and ``deepal report``: a config with one bad value, a config file that
is not TOML, and results or manifest files that are not deepal's are each refused in one line
with status 2, and nothing is written (no output folder, no report)."""

from __future__ import annotations

import json
import math
import socket
import sys
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from refusals import command_refuses, fuzz

#: A good config, small enough that one accepted by mistake ends in seconds.
GOOD: dict[str, Any] = {
    "name": "tiny", "datasets": ["digits"], "strategies": ["RandomSampling"], "seeds": [1],
    "loop": {"n_init_labeled": 20, "n_query": 10, "n_round": 1},
    "training": {"epochs": 1, "device": "cpu", "lr": 0.01, "batch_size": 16,
                 "optimizer": "Adam"},
}


def toml_value(value: Any) -> str:
    """``value`` written as TOML (numbers, strings, booleans, lists and inline tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        # A JSON string is a TOML basic string once non-ASCII characters are left as they are
        # (and DEL, which JSON leaves raw and TOML forbids, is escaped).
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{toml_value(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def toml(config: dict[str, Any]) -> str:
    top = [f"{key} = {toml_value(v)}" for key, v in config.items() if not isinstance(v, dict)]
    tables = [f"[{key}]\n" + "\n".join(f"{toml_value(k)} = {toml_value(x)}" for k, x in v.items())
              for key, v in config.items() if isinstance(v, dict)]
    return "\n".join(top) + "\n\n" + "\n\n".join(tables) + "\n"


text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8)
scalars = st.one_of(st.booleans(), st.integers(-(2**70), 2**70),
                    st.floats(allow_nan=True, allow_infinity=True), text)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(text, inner, max_size=2), max_leaves=5)
not_a_count = st.one_of(st.integers(max_value=0), st.floats(), st.booleans(), text,
                        st.lists(scalars, max_size=2))
not_a_rate = st.one_of(st.floats(max_value=0.0), st.sampled_from([math.nan, math.inf]),
                       st.booleans(), text, st.integers(max_value=-1))

#: Per key (``table.key`` or a top-level key): values it must refuse.
BAD = {
    "loop.n_init_labeled": st.one_of(st.integers(max_value=-1), st.integers(1348, 2**70),
                                     st.floats(), text),
    "loop.n_query": st.one_of(not_a_count, st.integers(1348, 2**70)),
    "loop.n_round": st.one_of(st.integers(max_value=-1), st.floats(), text, st.booleans()),
    "training.epochs": not_a_count,
    "training.batch_size": not_a_count,
    "training.lr": not_a_rate,
    "training.device": st.one_of(st.sampled_from(["gpu", "cuda:x", "", "tpu"]), st.integers()),
    "training.optimizer": st.one_of(st.sampled_from(["Adagrad", "adam ", "", "torch:SGD"]),
                                    st.integers()),
    "training.validation_fraction": st.one_of(st.floats(min_value=1.0), st.floats(max_value=-1e-9),
                                              st.sampled_from([math.nan, math.inf]), text),
    "training.optimizer_args": st.one_of(
        st.dictionaries(st.sampled_from(["weight_decay", "momentum", "betas", "nesterov_x"]),
                        st.one_of(st.sampled_from([math.nan, math.inf, -1.0]), text),
                        min_size=1, max_size=2),
        st.dictionaries(text.filter(lambda k: k not in {"weight_decay", "betas", "eps",
                                                        "amsgrad", "lr"}),
                        scalars, min_size=1, max_size=2), scalars),
    "training.semi_supervised": st.one_of(
        st.fixed_dictionaries({"method": st.one_of(st.sampled_from(["FixMatch", "", "mean"]),
                                                   st.integers())}),
        st.fixed_dictionaries({"threshold": st.one_of(st.floats(min_value=1.0,
                                                                exclude_min=True),
                                                      st.floats(max_value=-1e-9), text)}),
        st.fixed_dictionaries({"mu": not_a_count}),
        st.fixed_dictionaries({"weight": st.one_of(st.floats(max_value=-1e-9), text,
                                                   st.sampled_from([math.nan, math.inf]))}),
        st.fixed_dictionaries({"steps_per_epoch": not_a_count}),
        st.fixed_dictionaries({"tau": scalars}), scalars, st.lists(scalars, max_size=2)),
    "seeds": st.one_of(st.lists(st.integers(max_value=-1), min_size=1, max_size=2),
                       st.lists(st.integers(min_value=2**32), min_size=1, max_size=2),
                       st.just([]), st.lists(st.floats(), min_size=1, max_size=2),
                       st.lists(text, min_size=1, max_size=2), scalars),
    "strategies": st.one_of(st.just([]), st.lists(st.sampled_from(
        ["NoSuchSampling", "", "os:system", "deepal:Data"]), min_size=1, max_size=2), scalars),
    "datasets": st.one_of(st.just([]), st.lists(st.sampled_from(
        ["mnist2", "", "../digits"]), min_size=1, max_size=2), scalars),
    "name": st.one_of(st.integers(), st.lists(text, max_size=2), st.booleans()),
    "query.backend": st.one_of(st.sampled_from(["spark", "Ray", "", "single"]), st.integers(),
                               st.booleans()),
    # Without a backend, any shards or address is refused too: it would do nothing.
    "query.shards": st.one_of(not_a_count, st.integers(1, 64)),
    "query.address": st.one_of(st.sampled_from(["nowhere", "h:0", "h:65536", "http://h:1",
                                                "", "127.0.0.1:6379"]), st.integers()),
}


#: What a refusal of a key may name instead of the key.
NOUNS = {"datasets": ["data set"], "strategies": ["strateg"], "seeds": ["seed"],
         "training.optimizer": ["optimizer"], "training.device": ["device"],
         "training.optimizer_args": ["optimizer"]}


def with_value(key: str, value: Any) -> dict[str, Any]:
    config = json.loads(json.dumps(GOOD))
    table, _, name = key.rpartition(".")
    (config.setdefault(table, {}) if table else config)[name] = value
    return config


@fuzz(150)
@given(key=st.sampled_from(sorted(BAD)), data=st.data())
def test_a_config_with_one_bad_value_is_refused_before_anything_is_written(tmp_path, capsys,
                                                                          key, data):
    value = data.draw(BAD[key])
    path = tmp_path / "bad.toml"
    path.write_text(toml(with_value(key, value)), encoding="utf-8")
    out = tmp_path / "out"
    line = command_refuses(["experiment", str(path), "--output", str(out), "--quiet"], capsys,
                           "deepal experiment", f"bad {key}", watched=[tmp_path])
    named = [key.rpartition(".")[2], "budget", *NOUNS.get(key, [])]
    assert any(n.lower() in line.lower() for n in named), line


@fuzz(40)
@given(table=st.sampled_from(["", "loop", "training", "data", "resources", "query"]),
       key=text.filter(lambda k: k not in {"name", "datasets", "strategies", "seeds", "output",
                                           "loop", "training"}),
       value=values)
def test_an_unknown_key_is_refused(tmp_path, capsys, table, key, value):
    config = json.loads(json.dumps(GOOD))
    (config.setdefault(table, {}) if table else config)[key] = value
    path = tmp_path / "bad.toml"
    path.write_text(toml(config), encoding="utf-8")
    command_refuses(["experiment", str(path), "--output", str(tmp_path / "out"), "--quiet"],
                    capsys, "deepal experiment", "unknown key", watched=[tmp_path])


@fuzz(40)
@given(raw=st.one_of(st.binary(min_size=1, max_size=60),
                     st.integers(1, 3000).map(lambda n: b"a = " + b"[" * n + b"]" * n),
                     st.integers(4300, 6000).map(lambda n: b"seeds = [" + b"9" * n + b"]")))
def test_a_file_that_is_not_a_config_is_refused(tmp_path, capsys, raw):
    path = tmp_path / "bad.toml"
    path.write_bytes(raw)
    command_refuses(["experiment", str(path), "--output", str(tmp_path / "out"), "--quiet"],
                    capsys, "deepal experiment", "not a config", watched=[tmp_path])


@fuzz(20)
@given(option=st.sampled_from([["--workers", "0"], ["--workers", "-2"], ["--seeds", "-1"],
                               ["--seeds", "7"], ["--seeds", str(2**32)],
                               ["--backend", "slurm"], ["--workers", "x"],
                               ["--query-backend", "spark"], ["--shards", "2"],
                               ["--query-backend", "local", "--shards", "0"],
                               ["--query-address", "auto"],
                               ["--query-backend", "ray", "--query-address", "h:0"]]))
def test_bad_command_options_are_refused(tmp_path, capsys, option):
    path = tmp_path / "good.toml"
    path.write_text(toml(GOOD), encoding="utf-8")
    command_refuses(["experiment", str(path), "--output", str(tmp_path / "out"), "--quiet",
                     *option], capsys, "deepal experiment", f"bad {option[0]}",
                    watched=[tmp_path])


def test_a_ray_query_backend_that_cannot_run_is_refused_before_anything_is_written(
        tmp_path, capsys, monkeypatch):
    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = with_value("query.backend", "ray")
    config["query"]["address"] = f"127.0.0.1:{port}"
    path = tmp_path / "bad.toml"
    path.write_text(toml(config), encoding="utf-8")
    argv = ["experiment", str(path), "--output", str(tmp_path / "out"), "--quiet"]
    line = command_refuses(argv, capsys, "deepal experiment", "unreachable Ray",
                           watched=[tmp_path])
    assert f"cannot reach the Ray cluster at '127.0.0.1:{port}'" in line, line
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    line = command_refuses([*argv, "--query-address", "auto"], capsys, "deepal experiment",
                           "Ray missing", watched=[tmp_path])
    assert "needs Ray, which is not installed" in line, line


def test_more_shards_than_the_pool_is_refused_before_anything_is_written(tmp_path, capsys):
    path = tmp_path / "good.toml"
    path.write_text(toml(GOOD), encoding="utf-8")
    argv = ["experiment", str(path), "--output", str(tmp_path / "out"), "--quiet",
            "--query-backend", "local", "--shards", "100000"]
    line = command_refuses(argv, capsys, "deepal experiment", "too many shards",
                           watched=[tmp_path])
    assert "[query] shards = 100000 exceeds the pool of" in line, line


HEADER = "dataset,strategy,seed,round,n_labeled,test_accuracy"


@fuzz(60)
@given(rows=st.one_of(
    st.binary(min_size=1, max_size=80),
    st.lists(st.tuples(text, text, st.one_of(text, st.floats()), text, text, text), min_size=1,
             max_size=3).map(lambda rows: (HEADER + "\n" + "\n".join(
                 ",".join(str(c).replace(",", "").replace("\n", "") for c in r) for r in rows)
                 + "\n").encode())))
def test_a_results_file_that_is_not_deepals_is_refused(tmp_path, capsys, rows):
    (tmp_path / "results.csv").write_bytes(rows)
    command_refuses(["report", str(tmp_path), "--no-plots"], capsys, "deepal report",
                    "malformed results.csv", watched=[tmp_path])


GOOD_ROWS = HEADER + "\ndigits,RandomSampling,1,0,20,0.5\ndigits,RandomSampling,1,1,30,0.6\n"


@fuzz(60)
@given(manifest=st.one_of(
    st.binary(min_size=1, max_size=60),
    values.filter(lambda v: not isinstance(v, dict)).map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.sampled_from(["config", "sessions", "runs"]),
                    values.filter(lambda v: not isinstance(v, dict)), min_size=1)
    .map(lambda v: json.dumps(v).encode()),
    st.integers(1000, 50_000).map(lambda n: b"[" * n + b"]" * n)))
def test_a_manifest_that_is_not_deepals_is_refused(tmp_path, capsys, manifest):
    (tmp_path / "results.csv").write_text(GOOD_ROWS)
    (tmp_path / "manifest.json").write_bytes(manifest)
    command_refuses(["report", str(tmp_path), "--no-plots"], capsys, "deepal report",
                    "malformed manifest.json", watched=[tmp_path])


def test_a_report_of_nothing_or_of_a_file_is_refused(tmp_path: Path, capsys):
    (tmp_path / "file.txt").write_text("mine")
    for folder in (tmp_path / "missing", tmp_path / "file.txt", tmp_path):
        command_refuses(["report", str(folder), "--no-plots"], capsys, "deepal report",
                        "no experiment there", watched=[tmp_path])
    for target in ("1.5", "nan", "-0.1", "x"):
        (tmp_path / "results.csv").write_text(GOOD_ROWS)
        command_refuses(["report", str(tmp_path), "--no-plots", "--target", target], capsys,
                        "deepal report", "bad --target", watched=[tmp_path])
        (tmp_path / "results.csv").unlink()
