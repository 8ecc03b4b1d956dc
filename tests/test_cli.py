"""The `deepal` command: the demo loop, its output file and its errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from deepal import Strategy
from deepal.cli import main
from deepal.strategies.registry import STRATEGIES

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FAST = ["--n-epoch", "2", "--quiet"]


class FirstUnlabeled(Strategy):
    """A user's strategy, named on the command line as test_cli:FirstUnlabeled."""

    needs_model = False

    def query(self, n):
        return self.candidates()[0][:n]


def run(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(["run", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_run_prints_every_round_and_writes_json(tmp_path: Path, capsys):
    output = tmp_path / "out" / "run.json"
    code, out, _ = run(["--n-round", "2", "--n-query", "30", "--output", str(output), "--quiet"],
                       capsys)
    assert code == 0
    assert [line.split(":")[0] for line in out.splitlines() if line.startswith("Round")] == [
        "Round 0", "Round 1", "Round 2"]
    result = json.loads(output.read_text())
    assert result["arguments"]["dataset_name"] == "digits"
    assert result["arguments"]["strategy_name"] == "EntropySampling"
    rounds = result["rounds"]
    assert [r["n_labeled"] for r in rounds] == [100, 130, 160]
    for r in rounds:
        assert {"round", "n_labeled", "test_accuracy", "train_seconds", "query_seconds"} <= set(r)
        assert 0.0 <= r["test_accuracy"] <= 1.0
    assert len(set(rounds[1]["queried"]) | set(rounds[2]["queried"])) == 60
    assert rounds[-1]["test_accuracy"] > 0.8, "the MLP should learn digits from 160 labels"


def test_same_seed_same_queries_other_seed_other_queries(tmp_path: Path, capsys):
    def queried(seed: int, name: str) -> list[list[int]]:
        path = tmp_path / name
        args = ["--strategy-name", "MarginSampling", "--n-round", "2", "--n-query", "10",
                "--seed", str(seed), "--output", str(path), *FAST]
        assert run(args, capsys)[0] == 0
        return [r["queried"] for r in json.loads(path.read_text())["rounds"]]

    assert queried(3, "a.json") == queried(3, "b.json")
    assert queried(3, "a.json") != queried(4, "c.json")


def test_underscore_spellings_of_the_original(capsys):
    code, out, _ = run(["--dataset_name", "digits", "--strategy_name", "RandomSampling",
                        "--n_init_labeled", "40", "--n_query", "20", "--n_round", "1",
                        "--seed", "2", *FAST], capsys)
    assert code == 0 and "Round 1: 60 labeled" in out


def test_max_candidates_reaches_the_strategy(capsys):
    code, out, _ = run(["--strategy-name", "MarginSampling", "--max-candidates", "40",
                        "--n-query", "10", "--n-round", "1", *FAST], capsys)
    assert code == 0 and "Round 1: 110 labeled" in out
    code, _, err = run(["--max-candidates", "5", "--n-query", "10", *FAST], capsys)
    assert code == 2 and "max_candidates = 5 is below n_query = 10" in err


def test_test_batch_size_does_not_change_the_queries(tmp_path: Path, capsys):
    queried = []
    for size in ("7", "1000"):
        out_file = tmp_path / f"{size}.json"
        code, _, _ = run(["--strategy-name", "MarginSampling", "--n-round", "1",
                          "--test-batch-size", size, "--output", str(out_file), *FAST], capsys)
        assert code == 0
        queried.append(json.loads(out_file.read_text())["rounds"][1]["queried"])
    assert queried[0] == queried[1]


def test_random_sampling_may_start_from_no_labels(capsys):
    code, out, _ = run(["--strategy-name", "RandomSampling", "--n-init-labeled", "0",
                        "--n-query", "30", "--n-round", "1", *FAST], capsys)
    assert code == 0
    assert "Round 0: 0 labeled, test accuracy -" in out and "Round 1: 30 labeled" in out


def test_a_users_strategy_by_import_path(capsys):
    code, out, _ = run(["--strategy-name", "test_cli:FirstUnlabeled",
                        "--n-round", "1", "--n-query", "5", *FAST], capsys)
    assert code == 0 and "FirstUnlabeled on digits" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--strategy-name", "Oracle"], "unknown strategy 'Oracle'"),
        (["--dataset-name", "ImageNet"], "unknown data set 'ImageNet'"),
        (["--n-query", "500", "--n-round", "10"], "exceeds the pool of 1347"),
        (["--strategy-name", "MarginSampling", "--n-init-labeled", "0"], "needs a trained model"),
        (["--data-dir", "/no/such/folder", "--dataset-name", "MNIST"], "does not exist"),
        (["--n-query", "-3"], "--n-query: must be an integer >= 1, got -3"),
        (["--n-init-labeled", "-1"], "--n-init-labeled: must be an integer >= 0, got -1"),
        (["--n-epoch", "0"], "--n-epoch: must be an integer >= 1, got 0"),
        (["--test-batch-size", "0"], "--test-batch-size: must be an integer >= 1, got 0"),
        (["--n-pool", "0"], "--n-pool: must be an integer >= 1, got 0"),
        (["--net", "MNIST_Net"], "net MNIST_Net does not take digits's examples of shape"),
        (["--strategy-name", "no_such_pkg:Strategy"], "cannot import module"),
        (["--device", "gpu"], "--device: unknown device: use cpu, cuda, cuda:N or mps, got 'gpu'"),
        (["--seed", "-1"], "--seed: must be an integer from 0 to 4294967295"),
        (["--seed", str(2**32)], "--seed: must be an integer from 0 to 4294967295"),
    ],
)
def test_bad_arguments_end_with_one_line_and_status_2(args, message, capsys):
    code, out, err = run(args, capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("deepal: error: ") and message in err


def test_an_output_path_that_cannot_be_a_file_is_refused_before_the_run(tmp_path: Path,
                                                                         capsys):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("")
    for output, message in ((tmp_path / "folder", "is a folder: give a file name"),
                            (tmp_path / "file" / "run.json", "is a file, not a folder")):
        code, out, err = run(["--output", str(output)], capsys)
        assert code == 2 and message in err and err.count("\n") == 1
        assert "Round 0" not in out  # refused before training
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder"]
    assert not any((tmp_path / "folder").iterdir())


def test_the_console_script_exits_2_without_a_traceback():
    done = subprocess.run(
        [sys.executable, "-m", "deepal", "run", "--strategy-name", "Oracle"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "unknown strategy" in done.stderr


def test_list_names_everything(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in STRATEGIES) and "MNIST" in out and "ResNet18" in out


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_every_strategy_runs_on_digits(strategy: str, capsys):
    code, out, _ = run(["--strategy-name", strategy, "--n-init-labeled", "60",
                        "--n-query", "15", "--n-round", "1", *FAST], capsys)
    assert code == 0, out
    assert "Round 1: 75 labeled" in out


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_DATA / "mnist").is_dir(), reason="../shared/data/mnist missing")
@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_every_strategy_runs_on_real_mnist(strategy: str, capsys):
    code, out, _ = run(["--dataset-name", "MNIST", "--data-dir", str(SHARED_DATA),
                        "--n-pool", "1500", "--strategy-name", strategy,
                        "--n-init-labeled", "200", "--n-query", "50", "--n-round", "1",
                        "--n-epoch", "1", "--quiet"], capsys)
    assert code == 0, out
    assert "(1500 pool, 10000 test)" in out and "Round 1: 250 labeled" in out


def test_missing_files_that_cannot_be_downloaded_are_a_one_line_error(
    tmp_path: Path, monkeypatch, capsys
):
    # Nothing listens on 127.0.0.1:9, so every download is refused at once.
    monkeypatch.setenv("DEEPAL_MIRROR", "http://127.0.0.1:9")
    code, _, err = run(["--dataset-name", "SVHN", "--data-dir", str(tmp_path), *FAST], capsys)
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("deepal: error")]
    assert len(lines) == 1 and err.rstrip().endswith("subfolder holding them)")
    assert "train_32x32.mat" in lines[0] and str(tmp_path / "svhn") in lines[0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_cuda_without_it_is_a_clear_error(capsys):
    code, _, err = run(["--device", "cuda", *FAST], capsys)
    assert code == 2 and "CUDA is not available here" in err


def test_threads_are_used_and_recorded(tmp_path: Path, capsys, monkeypatch):
    used = []
    real = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (used.append(n), real(n)))
    output = tmp_path / "run.json"
    code, out, _ = run(["--n-round", "1", "--threads", "2", "--output", str(output), *FAST],
                       capsys)
    assert code == 0 and "seed 1, 2 threads" in out
    assert 2 in used and torch.get_num_threads() == 1  # the caller's count is restored
    result = json.loads(output.read_text())
    assert result["threads"] == 2 and result["arguments"]["threads"] == 2
    assert [r["threads"] for r in result["rounds"]] == [2, 2]


def test_threads_must_be_positive(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["run", "--threads", "0"])
    assert stop.value.code == 2 and "--threads: must be at least 1" in capsys.readouterr().err


def test_the_command_lets_idle_openmp_threads_sleep(monkeypatch, capsys):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert main(["list"]) == 0
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"


def test_run_trains_on_the_unlabeled_pool_when_asked(tmp_path: Path, capsys):
    def result(*extra: str) -> dict:
        path = tmp_path / f"run{len(extra)}.json"
        code, _, _ = run(["--n-round", "1", "--n-query", "10", "--n-init-labeled", "20",
                          "--n-epoch", "1", "--output", str(path), "--quiet", *extra], capsys)
        assert code == 0
        return json.loads(path.read_text())

    plain, semi = result(), result("--semi-supervised", "pseudo_label")
    assert semi["arguments"]["semi_supervised"] == "pseudo_label"
    assert semi["config_hash"] != plain["config_hash"]
    assert [r["n_labeled"] for r in semi["rounds"]] == [20, 30]
    # one epoch of 100 steps with the unlabeled pool, instead of one step over 20 labels
    assert semi["rounds"][0]["test_accuracy"] != plain["rounds"][0]["test_accuracy"]


def test_run_starts_typiclust_from_self_supervised_features(tmp_path: Path, capsys, monkeypatch):
    from deepal.config.pretraining import PretrainingSettings
    from deepal.experiments import pretrained

    # One epoch of pretraining is enough to exercise the path; the default takes longer.
    made = []

    def short(config):
        settings = (config.pretraining or PretrainingSettings()).model_copy(update={"epochs": 1})
        made.append(settings)
        return settings

    monkeypatch.setattr(pretrained, "settings_of", short)
    path = tmp_path / "run.json"
    code, out, _ = run(["--strategy-name", "TypiClust", "--features", "self-supervised",
                        "--pretrained-init", "--n-init-labeled", "0", "--n-query", "20",
                        "--n-round", "1", "--n-epoch", "1", "--quiet", "--output", str(path)],
                       capsys)
    assert code == 0 and made
    result = json.loads(path.read_text())
    assert result["arguments"]["features"] == "self-supervised"
    assert result["arguments"]["pretrained_init"] is True
    # No label to train on at first: the first batch came from the features alone.
    assert [r["n_labeled"] for r in result["rounds"]] == [0, 20]
    plain = tmp_path / "plain.json"
    assert run(["--strategy-name", "TypiClust", "--n-init-labeled", "10", "--n-query", "20",
                "--n-round", "1", "--n-epoch", "1", "--quiet", "--output", str(plain)],
               capsys)[0] == 0
    assert json.loads(plain.read_text())["config_hash"] != result["config_hash"]


def test_run_refuses_features_for_a_strategy_that_takes_none(capsys):
    code = main(["run", "--strategy-name", "MarginSampling", "--features", "self-supervised",
                 "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "MarginSampling takes no features" in err and "TypiClust" in err
