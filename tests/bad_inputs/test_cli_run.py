"""``deepal run``: one bad option among good ones is refused in one line with status 2, before
any training, with no output file or folder made."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from refusals import command_refuses, fuzz

#: Small good values for every option, so that an input accepted by mistake ends quickly.
GOOD = {"--n-init-labeled": "20", "--n-query": "10", "--n-round": "1", "--n-epoch": "1",
        "--seed": "1", "--device": "cpu", "--threads": "1"}

not_an_integer = st.one_of(
    st.sampled_from(["", "1.5", "1e3", "nan", "inf", "0x10", "ten", "1_0 0", "--"]),
    st.floats(allow_nan=True, allow_infinity=True).filter(lambda f: not f.is_integer())
    .map(repr),
)
below_one = st.integers(max_value=0).map(str)

BAD_VALUES = {
    "--n-init-labeled": st.one_of(st.integers(max_value=-1).map(str),
                                  st.integers(1348, 10**30).map(str), not_an_integer),
    "--n-query": st.one_of(below_one, st.integers(1348, 10**30).map(str), not_an_integer),
    "--n-round": st.one_of(st.integers(max_value=-1).map(str), not_an_integer),
    "--n-epoch": st.one_of(below_one, not_an_integer),
    "--n-pool": st.one_of(below_one, not_an_integer),
    "--seed": st.one_of(st.integers(max_value=-1).map(str),
                        st.integers(min_value=2**32).map(str), not_an_integer),
    "--threads": st.one_of(below_one, not_an_integer),
    "--max-candidates": st.one_of(below_one, not_an_integer),
    "--test-batch-size": st.one_of(below_one, not_an_integer),
    "--device": st.sampled_from(["gpu", "cuda:x", "tpu", "", "cpu:0:1", "cuda:-1"]),
    "--dataset-name": st.sampled_from(["mnist2", "", "digits ", "../digits", "os:system"]),
    "--strategy-name": st.sampled_from(["NoSuchSampling", "", "os:system", "deepal:Data",
                                        "deepal.nets:MLP", "json:loads", "x:y:z"]),
    "--net": st.sampled_from(["NoSuchNet", "", "os:getcwd", "deepal:Data"]),
    "--semi-supervised": st.sampled_from(["FixMatch", "", "mixmatch", "pseudo-label", "1"]),
    "--features": st.sampled_from(["SimCLR", "", "self_supervised", "1", "own"]),
    "--query-backend": st.sampled_from(["spark", "", "Ray", "single"]),
    # Without --query-backend, any shard count or address is refused: it would do nothing.
    "--shards": st.one_of(below_one, not_an_integer, st.integers(1, 64).map(str)),
    "--query-address": st.sampled_from(["auto", "nowhere", "h:0", "127.0.0.1:6379"]),
}

#: What the refusal of each option may name besides the option itself and its value.
NAMED = {"--dataset-name": ["data set"], "--strategy-name": ["strategy"], "--net": ["net"],
         "--device": ["device"], "--n-epoch": ["epochs"],
         "--n-init-labeled": ["n_init_labeled", "budget"], "--n-query": ["n_query", "budget"],
         "--query-address": ["address"]}


@fuzz(120)
@given(option=st.sampled_from(sorted(BAD_VALUES)), data=st.data())
def test_a_bad_option_value_is_refused_before_anything_runs(tmp_path, capsys, option, data):
    value = data.draw(BAD_VALUES[option])
    arguments = {**GOOD, option: value}
    output = tmp_path / "out" / "run.json"
    argv = ["run", *[f"{k}={v}" for k, v in arguments.items()], "--quiet",
            "--output", str(output)]
    line = command_refuses(argv, capsys, "deepal run", f"bad {option}", watched=[tmp_path])
    named = [option, option.lstrip("-").replace("-", "_"), *NAMED.get(option, [])]
    assert any(n in line.lower() for n in named) or value and value in line, (named, line)


@fuzz(20)
@given(where=st.sampled_from(["folder", "under a file", "data dir is a file"]))
def test_bad_paths_are_refused_before_training(tmp_path, capsys, where):
    (tmp_path / "folder").mkdir(exist_ok=True)
    (tmp_path / "file.csv").write_text("mine")
    argv = ["run", *[f"{k}={v}" for k, v in GOOD.items()], "--quiet"]
    if where == "folder":
        argv += ["--output", str(tmp_path / "folder")]
    elif where == "under a file":
        argv += ["--output", str(tmp_path / "file.csv" / "run.json")]
    else:
        argv += ["--data-dir", str(tmp_path / "file.csv"), "--dataset-name", "MNIST"]
    command_refuses(argv, capsys, "deepal run", f"bad path: {where}", watched=[tmp_path])


def test_unknown_options_and_arguments_are_one_line(capsys, tmp_path: Path):
    for argv in (["run", "--bogus"], ["run", "extra"], ["run", "--seed"], ["nothing"], []):
        command_refuses(argv, capsys, "deepal run", "unknown option", watched=[tmp_path])
