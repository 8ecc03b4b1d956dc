"""deepal experiment / report: config checks, metrics, results, report, workers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from deepal.cli import main
from deepal.errors import DeepALError, RunsFailedError
from deepal.experiments.config import ConfigError, load_config, parse_config
from deepal.experiments.metrics import aubc, labels_to_reach, mean_curve, mean_std
from deepal.experiments.runner import run_experiment
from deepal.experiments.store import read_rows

from _experiment_configs import comparable, write_config

# -- metrics, against hand-computed values --------------------------------------------------


def test_aubc_uniform_rounds():
    # (50 * (0.5 + 0.6) / 2 + 50 * (0.6 + 0.8) / 2) / 100 = (27.5 + 35) / 100
    assert aubc([100, 150, 200], [0.5, 0.6, 0.8]) == pytest.approx(0.625)


def test_aubc_budget_not_a_multiple_of_the_query_size():
    # budget 225 from 100 labels by 50: rounds at 150, 200, then 25 more at 225.
    # area = 27.5 + 35 + 25 * (0.8 + 0.9) / 2 = 83.75 over a range of 125
    assert aubc([100, 150, 200, 225], [0.5, 0.6, 0.8, 0.9]) == pytest.approx(0.67)
    # weighting the last round like a full one would give (27.5 + 35 + 42.5) / 150 = 0.7
    assert not math.isclose(aubc([100, 150, 200, 225], [0.5, 0.6, 0.8, 0.9]), 0.7)


def test_aubc_edge_cases():
    assert aubc([100], [0.42]) == pytest.approx(0.42)
    assert aubc([0, 10], [1.0, 1.0]) == pytest.approx(1.0)
    with pytest.raises(DeepALError):
        aubc([100, 100], [0.5, 0.6])
    with pytest.raises(DeepALError):
        aubc([100, 200], [0.5])


def test_labels_to_reach_and_mean_std():
    assert labels_to_reach([100, 150, 200], [0.5, 0.9, 0.85], 0.8) == 150
    assert labels_to_reach([100, 150, 200], [0.5, 0.9, 0.85], 0.95) is None
    assert mean_std([0.6, 0.8]) == pytest.approx((0.7, math.sqrt(0.02)))
    assert mean_std([0.6]) == (0.6, 0.0)
    x, mean, std = mean_curve([([1, 2], [0.2, 0.4]), ([1, 2], [0.4, 0.8])])
    assert x.tolist() == [1, 2] and mean == pytest.approx([0.3, 0.6])
    assert std == pytest.approx([math.sqrt(0.02), math.sqrt(0.08)])


# -- config -----------------------------------------------------------------------------------


def _raw(**loop) -> dict:
    return {"datasets": ["digits"], "strategies": ["RandomSampling"], "seeds": [1],
            "loop": {"n_init_labeled": 100, "n_query": 50, **loop}}


def test_query_sizes_meet_the_budget_exactly():
    assert parse_config(_raw(budget=225)).query_sizes() == [50, 50, 25]
    assert parse_config(_raw(budget=225)).n_round == 3
    assert parse_config(_raw(n_round=2)).query_sizes() == [50, 50]
    assert parse_config(_raw(n_round=2)).budget == 200


@pytest.mark.parametrize("raw, message", [
    (_raw(budget=-5), "budget = -5 must be at least n_init_labeled"),
    (_raw(n_round=2, budget=200), "exactly one of n_round"),
    (_raw(), "exactly one of n_round"),
    ({**_raw(n_round=1), "seeds": []}, "seeds: must not be empty"),
    ({**_raw(n_round=1), "sedes": [1]}, "unknown key 'sedes'"),
    ({**_raw(n_round=1), "training": {"validation_fraction": 1.5}}, "validation_fraction"),
    (_raw(n_round=1, max_candidates=10), "max_candidates = 10 is below n_query = 50"),
])
def test_malformed_configs(raw, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        parse_config(raw)


def test_not_toml(tmp_path: Path):
    path = tmp_path / "bad.toml"
    path.write_text("datasets = [digits")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


@pytest.mark.parametrize("change, message", [
    ({"strategies": '["RandomSampling", "NoSuchSampling"]'}, "unknown strategy 'NoSuchSampling'"),
    ({"budget_line": "budget = -10"}, "budget = -10 must be at least"),
    ({"budget_line": "budget = 5000"}, "exceeds the pool of 1347 digits examples"),
    ({"extra_training": 'optimizer = "Adagrad"'},
     "[training] optimizer: unknown optimizer: choose one of SGD, Adam, AdamW, got 'Adagrad'"),
    ({"extra_training": "lr = nan"}, "[training] lr: must be a finite number > 0, got nan"),
    ({"extra_training": "lr = -0.1"}, "[training] lr: must be a finite number > 0, got -0.1"),
    ({"extra_training": "optimizer_args = {weight_decay = inf}"},
     "[training] optimizer_args: weight_decay must be finite, got inf"),
    ({"extra_training": 'optimizer = "SGD"\noptimizer_args = {weight_decay = -1.0}'},
     "[training] optimizer_args: weight_decay must be >= 0, got -1.0"),
    ({"epochs": 0}, "[training] epochs: must be an integer >= 1, got 0"),
    ({"epochs": -2}, "[training] epochs: must be an integer >= 1, got -2"),
    ({"extra_training": "optimizer_args = {momentum = 0.9}"},  # digits trains with Adam
     "[training] optimizer_args: Adam takes no keyword 'momentum': its keywords are lr, betas"),
    ({"extra_training": 'optimizer = "SGD"\noptimizer_args = {betas = [0.9, 0.99]}'},
     "SGD takes no keyword 'betas': its keywords are lr, momentum, dampening, weight_decay"),
    ({"extra_training": 'net = "MNIST_Net"'},
     "[training] net MNIST_Net does not take digits's examples of shape (64,)"),
    ({"extra_training": 'net = "torch.nn:Identity"'}, "net Identity must return (logits, "),
    ({"extra_training": 'net = "NoNet"'}, "unknown network 'NoNet'"),
    ({"strategies": '["CEAL"]', "extra_training": "validation_fraction = 0.2"},
     "CEAL trains its own way"),
])
def test_bad_config_is_a_clear_error_before_any_run(tmp_path: Path, capsys, change, message):
    config = write_config(tmp_path, **change)
    output = tmp_path / "out"
    assert main(["experiment", str(config), "--output", str(output), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("deepal: error: ") and message in err
    assert not output.exists(), "nothing may run or be written before the config is checked"


def test_missing_data_set_is_a_clear_error_before_any_run(tmp_path: Path, capsys):
    config = tmp_path / "mnist.toml"
    config.write_text(write_config(tmp_path).read_text().replace('"digits"', '"MNIST"')
                      + f'\n[data]\ndata_dir = "{tmp_path / "nowhere"}"\n')
    output = tmp_path / "out"
    assert main(["experiment", str(config), "--output", str(output)]) == 2
    err = capsys.readouterr().err
    assert "data_dir" in err and "does not exist" in err and not output.exists()
    config.write_text(config.read_text().replace('"MNIST"', '"ImageNet"'))
    assert main(["experiment", str(config), "--output", str(output)]) == 2
    assert "unknown data set 'ImageNet'" in capsys.readouterr().err


# -- runs and results ---------------------------------------------------------------------------


def test_a_manifest_from_before_sessions_becomes_the_first_session(tmp_path: Path):
    output = tmp_path / "out"
    output.mkdir()
    legacy = {"deepal_version": "0.0.9", "python": "3.11.7", "torch": "2.13.0+cpu",
              "numpy": "2.1", "platform": "Linux-x", "started": "2026-11-25T01:00:00+0000",
              "updated": "2026-11-25T02:00:00+0000"}
    (output / "manifest.json").write_text(json.dumps(legacy))
    config = write_config(tmp_path, strategies='["RandomSampling"]', seeds="[1]",
                          budget_line="budget = 60")
    assert main(["experiment", str(config), "--output", str(output), "--quiet"]) == 0
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["sessions"][0] == {**legacy, "device": None}
    assert manifest["started"] == legacy["started"]
    assert manifest["sessions"][1]["device"] == "cpu" and len(manifest["sessions"]) == 2


def test_an_unreadable_manifest_stops_the_experiment_before_it_is_replaced(tmp_path: Path, capsys):
    output = tmp_path / "out"
    output.mkdir()
    (output / "manifest.json").write_text("{not json")
    config = write_config(tmp_path, strategies='["RandomSampling"]', seeds="[1]")
    assert main(["experiment", str(config), "--output", str(output), "--quiet"]) != 0
    err = capsys.readouterr().err
    assert "manifest.json" in err and "move it aside" in err  # names the file and the fix
    assert (output / "manifest.json").read_text() == "{not json"  # nothing overwritten


def test_experiment_writes_rows_manifest_and_report(tmp_path: Path, capsys):
    output = tmp_path / "out"
    config = write_config(tmp_path)
    assert main(["experiment", str(config), "--output", str(output), "--workers", "1"]) == 0
    out, err = capsys.readouterr()
    assert "4 runs complete" in out
    assert "digits-MarginSampling-seed2: round 3/3, 90 labels" in err  # one line per round

    rows = read_rows(output / "results.csv")
    assert len(rows) == 2 * 2 * 4
    for run in {(r["strategy"], r["seed"]) for r in rows}:
        mine = sorted((r for r in rows if (r["strategy"], r["seed"]) == run),
                      key=lambda r: r["round"])
        assert [r["n_labeled"] for r in mine] == [40, 60, 80, 90]
        assert [r["n_queried"] for r in mine] == [0, 20, 20, 10]
        assert [len(r["queried"]) for r in mine] == [0, 20, 20, 10]
        assert len({i for r in mine for i in r["queried"]}) == 50
        assert all(0 <= r["test_accuracy"] <= 1 and r["test_loss"] > 0 for r in mine)
        assert {r["deepal_version"] for r in mine} == {"0.1.0"}
        assert {r["threads"] for r in mine} == {1}
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["config"]["strategies"] == ["RandomSampling", "MarginSampling"]
    assert [r["complete"] for r in manifest["runs"]] == [True] * 4
    assert manifest["config_hash"] == rows[0]["config_hash"]
    assert (output / "config.toml").read_text() == config.read_text()

    assert [s["device"] for s in manifest["sessions"]] == ["cpu"]  # the config's device
    assert [s["threads"] for s in manifest["sessions"]] == [1]  # [resources] cpus_per_run
    assert manifest["started"] == manifest["sessions"][0]["started"]

    # Running it again does nothing more and changes nothing but the manifest's record of
    # the sessions, which keeps the first.
    before = (output / "results.csv").read_text()
    assert main(["experiment", str(config), "--output", str(output), "--quiet"]) == 0
    assert "4 runs complete (4 resumed or already done)" in capsys.readouterr().out
    assert (output / "results.csv").read_text() == before
    again = json.loads((output / "manifest.json").read_text())
    assert again["sessions"][0] == manifest["sessions"][0] and len(again["sessions"]) == 2
    assert again["started"] == manifest["started"]

    pytest.importorskip("matplotlib")
    assert main(["report", str(output)]) == 0
    report = (output / "report" / "report.md").read_text()
    assert (output / "report" / "digits.png").stat().st_size > 1000
    assert "<svg" in (output / "report" / "digits.svg").read_text()
    assert "Run in 2 sessions:" in report and report.count(", cpu; started ") == 2
    assert "different machines" not in report
    again["sessions"][1]["device"] = "cuda"  # as if resumed on a GPU machine
    (output / "manifest.json").write_text(json.dumps(again))
    assert main(["report", str(output)]) == 0
    assert "these means mix them" in (output / "report" / "report.md").read_text()
    table = [line for line in report.splitlines() if line.startswith("| Random")]
    assert len(table) == 1 and "| 2 |" in table[0]
    runs = [[r for r in rows if (r["strategy"], r["seed"]) == ("RandomSampling", s)]
            for s in (1, 2)]
    aubcs = [aubc([r["n_labeled"] for r in run], [r["test_accuracy"] for r in run])
             for run in runs]
    assert f"{np.mean(aubcs):.4f} ± {np.std(aubcs, ddof=1):.4f}" in table[0]
    assert "```toml" in report


def test_changed_settings_do_not_mix_with_earlier_results(tmp_path: Path, capsys):
    output = tmp_path / "out"
    config = write_config(tmp_path, strategies='["RandomSampling"]', seeds="[1]")
    assert main(["experiment", str(config), "--output", str(output), "--quiet"]) == 0
    write_config(tmp_path, strategies='["RandomSampling"]', seeds="[1]", epochs=2)
    assert main(["experiment", str(config), "--output", str(output), "--quiet"]) == 2
    assert "made with other settings" in capsys.readouterr().err


def _options(n_drop: int) -> str:
    """[strategy_options] for BALDDropout, after the [training] table of write_config."""
    return f"\n[strategy_options.BALDDropout]\nn_drop = {n_drop}"


def test_adding_a_strategy_with_options_resumes_the_earlier_runs(tmp_path: Path):
    output = tmp_path / "out"
    run_experiment(load_config(write_config(tmp_path, strategies='["MarginSampling"]',
                                            seeds="[1]")), output)
    margin = comparable(read_rows(output / "results.csv"))
    both = load_config(write_config(tmp_path, strategies='["MarginSampling", "BALDDropout"]',
                                    seeds="[1]", extra_training=_options(3)))
    summaries = run_experiment(both, output)
    assert [(s["run"], s["resumed_from"]) for s in summaries] == [
        ("digits-MarginSampling-seed1", 3), ("digits-BALDDropout-seed1", None)]
    rows = read_rows(output / "results.csv")
    assert comparable([r for r in rows if r["strategy"] == "MarginSampling"]) == margin
    # A run's own options still count.
    fewer = load_config(write_config(tmp_path, strategies='["MarginSampling", "BALDDropout"]',
                                     seeds="[1]", extra_training=_options(4)))
    with pytest.raises(ConfigError, match="BALDDropout's options changed"):
        run_experiment(fewer, output)


def test_runs_hashed_with_every_strategys_options_still_resume(tmp_path: Path):
    from deepal.experiments.config import settings_hash
    from deepal.experiments.store import RunStore

    output = tmp_path / "out"
    config = load_config(write_config(tmp_path, strategies='["MarginSampling", "BALDDropout"]',
                                      seeds="[1]", extra_training=_options(3)))
    run_experiment(config, output)
    whole = settings_hash(config.run_settings())  # what checkpoints held before
    assert whole != settings_hash(config.run_settings("MarginSampling"))
    store = RunStore(output, "digits-MarginSampling-seed1")
    store.save({**store.load(), "settings": whole})  # type: ignore[dict-item]
    summaries = run_experiment(config, output)
    assert summaries[0] == {"run": "digits-MarginSampling-seed1", "rounds": 3,
                            "resumed_from": 3}
    store.save({**store.load(), "settings": "0123456789ab"})  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="MarginSampling's options changed"):
        run_experiment(config, output)


def test_one_run_reproduces_deepal_run(tmp_path: Path, capsys):
    """The demo's options are a special case of a config: same seed, same results."""
    config = write_config(tmp_path, strategies='["MarginSampling"]', seeds="[3]",
                          budget_line="n_round = 2", epochs=2)
    run_experiment(load_config(config), tmp_path / "out")
    rows = sorted(read_rows(tmp_path / "out" / "results.csv"), key=lambda r: r["round"])
    assert main(["run", "--strategy-name", "MarginSampling", "--seed", "3", "--n-epoch", "2",
                 "--n-init-labeled", "40", "--n-query", "20", "--n-round", "2", "--device",
                 "cpu", "--quiet", "--output", str(tmp_path / "run.json")]) == 0
    capsys.readouterr()
    demo = json.loads((tmp_path / "run.json").read_text())["rounds"]
    assert [r["queried"] for r in rows] == [r["queried"] for r in demo]
    assert [r["test_accuracy"] for r in rows] == [r["test_accuracy"] for r in demo]


def test_results_do_not_depend_on_the_number_of_workers(tmp_path: Path):
    config = load_config(write_config(tmp_path, epochs=2))
    run_experiment(config, tmp_path / "one", workers=1)
    run_experiment(config, tmp_path / "two", workers=2)
    assert comparable(read_rows(tmp_path / "one" / "results.csv")) == comparable(
        read_rows(tmp_path / "two" / "results.csv"))


# The broken run comes first, so stopping at the first failure leaves random sampling unrun.
BROKEN_THEN_RANDOM = '["_experiment_configs:BrokenSampling", "RandomSampling"]'
BROKEN_RUN = "digits-_experiment_configs_BrokenSampling-seed1"


def _complete_runs(out: Path) -> dict[str, bool]:
    runs = json.loads((out / "manifest.json").read_text())["runs"]
    return {run["id"]: run["complete"] for run in runs}


@pytest.mark.parametrize("workers", [1, 2])
def test_keep_going_finishes_the_other_runs_then_names_the_failed_one(tmp_path: Path,
                                                                       workers: int):
    config = load_config(write_config(tmp_path, strategies=BROKEN_THEN_RANDOM, seeds="[1]"))
    out = tmp_path / "out"
    with pytest.raises(RunsFailedError) as caught:
        run_experiment(config, out, workers=workers, keep_going=True)
    assert list(caught.value.failures) == [BROKEN_RUN]
    assert "1 of 2 runs failed" in str(caught.value)
    assert "breaks on purpose" in str(caught.value)
    rows = read_rows(out / "results.csv")
    assert [r["n_labeled"] for r in rows if r["strategy"] == "RandomSampling"] == [40, 60, 80, 90]
    assert _complete_runs(out) == {BROKEN_RUN: False, "digits-RandomSampling-seed1": True}


def test_by_default_the_first_failed_run_stops_the_experiment(tmp_path: Path):
    config = load_config(write_config(tmp_path, strategies=BROKEN_THEN_RANDOM, seeds="[1]"))
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="breaks on purpose"):
        run_experiment(config, out, workers=1)
    assert not [r for r in read_rows(out / "results.csv") if r["strategy"] == "RandomSampling"]
    assert _complete_runs(out) == {BROKEN_RUN: False, "digits-RandomSampling-seed1": False}


def test_keep_going_on_the_command_line(tmp_path: Path, capsys):
    path = write_config(tmp_path, strategies=BROKEN_THEN_RANDOM, seeds="[1]")
    out = tmp_path / "out"
    code = main(["experiment", str(path), "--output", str(out), "--workers", "1", "--quiet",
                 "--keep-going"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("deepal: error: 1 of 2 runs failed") and BROKEN_RUN in err
    assert _complete_runs(out)["digits-RandomSampling-seed1"]


def test_validation_split_and_warm_start_run(tmp_path: Path):
    config = load_config(write_config(
        tmp_path, strategies='["EntropySampling"]', seeds="[1]", epochs=30,
        extra_training="validation_fraction = 0.25\npatience = 1\nwarm_start = true\nlr = 0.05"))
    run_experiment(config, tmp_path / "out")
    rows = read_rows(tmp_path / "out" / "results.csv")
    assert [r["n_labeled"] for r in rows] == [40, 60, 80, 90]
    assert all(1 <= r["epochs_trained"] < 30 for r in rows), "early stopping should stop"


def test_report_of_an_empty_folder_is_a_clear_error(tmp_path: Path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "run `deepal experiment CONFIG.toml` first" in capsys.readouterr().err


def test_ray_backend_without_ray_says_how_to_install(tmp_path: Path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    config = write_config(tmp_path, strategies='["RandomSampling"]', seeds="[1]")
    code = main(["experiment", str(config), "--output", str(tmp_path / "o"), "--backend", "ray"])
    assert code == 2 and 'pip install "deepal[ray]"' in capsys.readouterr().err


# -- progress ---------------------------------------------------------------------------------


def _events() -> list[dict]:
    return [
        {"event": "start", "run": "digits-Margin-seed1", "round": 0, "n_round": 2},
        {"event": "round", "run": "digits-Margin-seed1", "round": 0, "n_round": 2,
         "n_labeled": 40, "test_accuracy": 0.5},
        {"event": "round", "run": "digits-Margin-seed1", "round": 1, "n_round": 2,
         "n_labeled": 60, "test_accuracy": 0.625},
        {"event": "done", "run": "digits-Margin-seed1", "rounds": 2},
    ]


@pytest.mark.parametrize("mode", ["lines", "live", "quiet"])
def test_progress_modes(mode: str):
    import io

    from deepal.experiments.progress import Progress

    stream = io.StringIO()
    progress = Progress(total_rounds=6, done_rounds=1, mode=mode, stream=stream)
    for event in _events():
        progress(event)
    progress.close()
    text = stream.getvalue()
    if mode == "quiet":
        assert text == ""
    elif mode == "lines":
        assert text.splitlines() == [
            "[2/6] digits-Margin-seed1: round 0/2, 40 labels, accuracy 0.5000",
            "[3/6] digits-Margin-seed1: round 1/2, 60 labels, accuracy 0.6250"]
    else:
        assert "digits-Margin-seed1: round 1/2, 60 labels, accuracy 0.6250" in text
        assert "3/6" in text  # the overall bar


# -- report on hand-made results ----------------------------------------------------------------


def test_report_tables_and_consistent_colours(tmp_path: Path):
    from deepal.experiments.report import colour_of, write_report
    from deepal.experiments.store import atomic_write_text, rows_to_csv

    curves = {  # (dataset, strategy, seed) -> accuracies at 100, 150, 200, 225 labels
        ("A", "Random", 1): [0.5, 0.6, 0.8, 0.9], ("A", "Random", 2): [0.5, 0.6, 0.6, 0.7],
        ("A", "Margin", 1): [0.5, 0.7, 0.9, 0.95], ("A", "Margin", 2): [0.5, 0.7, 0.9, 0.95],
        ("B", "Margin", 1): [0.2, 0.4, 0.6, 0.8], ("B", "Random", 1): [0.2, 0.3, 0.4, 0.5],
    }
    rows = [{"dataset": d, "strategy": s, "seed": seed, "round": r, "n_labeled": n,
             "n_queried": 0, "test_accuracy": acc, "train_seconds": 1.0,
             "query_seconds": 0.5 * (r > 0), "queried": []}
            for (d, s, seed), accs in curves.items()
            for r, (n, acc) in enumerate(zip([100, 150, 200, 225], accs, strict=True))]
    atomic_write_text(tmp_path / "results.csv", rows_to_csv(rows))
    (tmp_path / "manifest.json").write_text(json.dumps({
        "deepal_version": "0.1.0", "python": "3", "torch": "2", "platform": "x",
        "started": "s", "updated": "u", "config_text": "name = 'hand'",
        "config": {"name": "hand", "strategies": ["Random", "Margin"]}}))
    pytest.importorskip("matplotlib")
    report = write_report(tmp_path, target=0.75).read_text()
    # Random on A: AUBC 0.67 (seed 1) and (27.5 + 30 + 16.25) / 125 = 0.59 (seed 2)
    assert "| Random | 2 | 0.6300 ± 0.0566 | 0.8000 ± 0.1414 | 200 (1/2 seeds) | 1.000 | 0.500 |" \
        in report
    # Margin on A: (30 + 40 + 23.125) / 125 = 0.745 twice; 0.75 reached at 200 labels
    assert "| Margin | 2 | 0.7450 ± 0.0000 | 0.9500 ± 0.0000 | 200 | 1.000 | 0.500 |" in report
    # Random on B: (12.5 + 17.5 + 11.25) / 125 = 0.33, never at 0.75
    assert "| Random | 1 | 0.3300 ± 0.0000 | 0.5000 ± 0.0000 | never |" in report
    assert report.index("## A") < report.index("## B") and "name = 'hand'" in report
    for strategy in ("Random", "Margin"):  # the same colour in both figures
        colour = colour_of(strategy, ["Random", "Margin"])
        for figure in ("A.svg", "B.svg"):
            assert colour.lower() in (tmp_path / "report" / figure).read_text().lower()
    assert colour_of("Random", ["Random", "Margin"]) != colour_of("Margin", ["Random", "Margin"])


@pytest.mark.parametrize("options, message", [
    (_options(1), "[strategy_options.BALDDropout] n_drop must be an integer >= 2, got 1"),
    ("\n[strategy_options.BALDDropout]\nbeta = nan",
     "[strategy_options.BALDDropout] beta must be a number > 0 (inf for top-n), got nan"),
])
def test_a_bad_strategy_option_is_named_before_anything_is_written(
        tmp_path: Path, capsys, options: str, message: str):
    output = tmp_path / "out"
    config = write_config(tmp_path, strategies='["BALDDropout"]', seeds="[1]",
                          extra_training=options)
    assert main(["experiment", str(config), "--output", str(output), "--quiet"]) == 2
    assert capsys.readouterr().err.strip() == f"deepal: error: {message}"
    assert not output.exists()


def test_two_processes_sharing_a_folder_with_other_seeds_are_both_in_the_manifest(
        tmp_path: Path):
    """The second starts while the first is mid-run; each writes the manifest after every
    round, and neither loses the other's session or progress."""
    import json

    output = tmp_path / "out"
    config = load_config(write_config(tmp_path, strategies='["RandomSampling"]',
                                      seeds="[1, 2]"))
    started: list[bool] = []

    def start_the_other_seed(event: dict) -> None:
        if event["event"] == "round" and event["round"] == 1 and not started:
            started.append(True)
            run_experiment(config, output, seeds=[2])

    run_experiment(config, output, seeds=[1], emit=start_the_other_seed)
    manifest = json.loads((output / "manifest.json").read_text())
    sessions = manifest["sessions"]
    assert len(sessions) == 2 and len({s["session_id"] for s in sessions}) == 2
    assert manifest["started"] == sessions[0]["started"]
    assert {run["seed"]: run["complete"] for run in manifest["runs"]} == {1: True, 2: True}
    rows = read_rows(output / "results.csv")
    assert {row["seed"] for row in rows} == {1, 2}


def test_output_files_follow_the_umask(tmp_path: Path):
    import os

    from deepal.experiments.store import file_mode

    output = tmp_path / "out"
    run_experiment(load_config(write_config(tmp_path, strategies='["RandomSampling"]',
                                            seeds="[1]")), output)
    assert file_mode() == 0o666 & ~_umask()
    for name in ("results.csv", "manifest.json", "runs/digits-RandomSampling-seed1/rounds.csv",
                 "runs/digits-RandomSampling-seed1/checkpoint.pt"):
        assert os.stat(output / name).st_mode & 0o777 == file_mode(), name


def _umask() -> int:
    import os

    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("content, reason", [
    (b"\xff\xfe not utf-8", "UnicodeDecodeError"),
    (b"dataset,seed,round\ndigits,one,0\n", "ValueError"),
    (b"dataset,seed\ndigits,1,extra\n", "more cells than the header"),
])
def test_a_malformed_results_file_is_one_clear_error(tmp_path: Path, capsys, content: bytes,
                                                     reason: str):
    (tmp_path / "results.csv").write_bytes(content)
    assert main(["report", str(tmp_path), "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "results.csv is not a results file" in err and reason in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv"]  # nothing written


@pytest.mark.parametrize("manifest, message", [
    (b"\xff{}", "is not a manifest deepal can read (UnicodeDecodeError"),
    (b'{"a":', "is not a manifest deepal can read (JSONDecodeError"),
    (b"[" * 100_000 + b"]" * 100_000, "is not a manifest deepal can read (RecursionError"),
    (b"[1, 2]", "it holds a list, not an object"),
    (b'{"config": 3}', "holds no readable config"),
])
def test_a_malformed_manifest_is_one_clear_error(tmp_path: Path, capsys, manifest: bytes,
                                                 message: str):
    (tmp_path / "results.csv").write_text(
        "dataset,strategy,seed,round,n_labeled,test_accuracy\ndigits,R,1,0,10,0.5\n")
    (tmp_path / "manifest.json").write_bytes(manifest)
    assert main(["report", str(tmp_path), "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize("text, message", [
    ("name = " + "[" * 5000 + "]" * 5000, "is not a config deepal can read"),
    ("seeds = [" + "9" * 5000 + "]", "is not a config deepal can read"),
])
def test_a_config_nested_too_deep_or_with_a_huge_integer_is_refused(tmp_path: Path, capsys,
                                                                    text: str, message: str):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert main(["experiment", str(path), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and not (tmp_path / "out").exists()
