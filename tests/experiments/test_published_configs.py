"""The published MNIST protocols (experiments/*.toml): the configs load, say what the papers
did, and a tiny version of each runs end to end on the real MNIST."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from deepal.experiments.config import load_config, smoke_config
from deepal.experiments.runner import check_experiment, run_experiment

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
CONFIGS = {"gal2017": ROOT / "experiments" / "gal2017.toml",
           "batchbald2019": ROOT / "experiments" / "batchbald2019.toml"}


def test_gal2017_states_the_protocol():
    config = load_config(CONFIGS["gal2017"])
    assert config.loop.initial == "balanced" and config.loop.n_init_labeled == 20
    assert (config.loop.n_query, config.budget, config.loop.max_candidates) == (10, 1000, 2000)
    assert config.training.net == "GalCNN" and config.training.validation_size == 100
    assert len(config.seeds) >= 3 and config.training.device is None
    assert {o["n_drop"] for o in config.strategy_options.values()} == {100}


def test_batchbald2019_states_the_protocol():
    config = load_config(CONFIGS["batchbald2019"])
    assert config.loop.initial == "balanced" and config.loop.n_init_labeled == 20
    assert config.loop.n_query == 10 and config.loop.max_candidates is None
    assert config.training.net == "BatchBALDCNN" and config.training.patience == 3
    assert config.strategy_options["BatchBALD"] == {"n_drop": 100, "n_configurations": 40000}


def test_smoke_config_shrinks_only_the_cost():
    config = load_config(CONFIGS["batchbald2019"])
    smoke = smoke_config(config)
    assert smoke.seeds == (1,) and smoke.query_sizes() == [10, 10]
    assert smoke.training.epochs == 1 and smoke.data.n_pool == 3000
    assert smoke.strategy_options["BatchBALD"] == {"n_drop": 4, "n_configurations": 1000}
    assert smoke.training.net == config.training.net and smoke.loop.initial == "balanced"


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_tiny_version_runs_on_mnist(name, tmp_path):
    if not (DATA / "mnist").is_dir():
        pytest.skip(f"MNIST is not in {DATA} (the shared data folder of this checkout)")
    config = smoke_config(load_config(CONFIGS[name]), n_round=1, n_pool=1500,
                          max_candidates=100)
    config = config.replaced(data={"data_dir": str(DATA)}, training={"device": "cpu"})
    run_experiment(config, tmp_path)
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert {r["strategy"] for r in rows} == set(config.strategies)
    assert {int(r["n_labeled"]) for r in rows} == {20, 30}
    for run in (tmp_path / "runs").iterdir():
        validation = set(map(int, (run / "validation_idxs.txt").read_text().split()))
        assert len(validation) == config.training.validation_size
        queried = {int(i) for r in rows if r["queried"] for i in r["queried"].split()}
        assert not validation & queried


@pytest.mark.parametrize("path", sorted((ROOT / "experiments").glob("*.toml")),
                         ids=lambda p: p.name)
@pytest.mark.skipif(not DATA.is_dir(), reason="needs ../shared/data")
def test_every_shipped_config_is_valid_before_it_runs(path, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the configs' data_dir is relative to the repository root
    config = load_config(path)
    assert config.name == path.stem
    # names, strategy options, data files and budgets: what a run would fail on at its start
    specs = check_experiment(config, tmp_path)
    assert len(specs) == len(config.strategies) * len(config.seeds) * len(config.datasets)


def test_the_authors_recorded_batchbald_runs_give_the_documented_table():
    from deepal.experiments.published import protocol_table
    from deepal.experiments.report import load_results

    rows = load_results(ROOT / "docs" / "results" / "batchbald2019_authors")
    assert {(r["strategy"], r["seed"]) for r in rows if r["round"] == 0} == {
        (s, seed) for s in ("BatchBALD", "BALDDropout")
        for seed in (1029338, 1038804, 572400, 661442, 734490, 926965)}
    assert all(r["n_labeled"] == 20 + 10 * r["round"] for r in rows)
    table = protocol_table(rows, [0.90, 0.95])
    assert "| MNIST | BatchBALD | 6 | 102 | 105 [85, 118] | 222 | 225 [202, 240] |" in table
    bald = ("| MNIST | BALDDropout | 6 | 158 | 155 [130, 180] | never (3 of 6 seeds) "
            "| never [260, never] |")
    assert bald in table
    docs = (ROOT / "docs" / "results.md").read_text()
    assert "| BatchBALD | 105 [85, 118] (102) | 225 [202, 240] (222) |" in docs


@pytest.mark.parametrize("folder, column", [
    ("batchbald2019_cpu", "ours, 2,000 candidates (CPU)"),
    ("batchbald2019", "ours, whole pool"),
])
def test_our_batchbald_runs_give_the_documented_table(folder, column):
    from deepal.experiments.published import protocol_table
    from deepal.experiments.report import load_results

    rows = load_results(ROOT / "docs" / "results" / folder)
    runs = {(r["strategy"], r["seed"]) for r in rows}
    finished = {(r["strategy"], r["seed"]) for r in rows if r["n_labeled"] == 300}
    assert runs == finished  # only complete seeds are published
    assert {s for s, _ in runs} == {"BatchBALD", "BALDDropout", "RandomSampling"}
    table = protocol_table(rows, [0.90, 0.95]).splitlines()
    docs = (ROOT / "docs" / "results.md").read_text().splitlines()
    first = next(i for i, line in enumerate(docs) if line.startswith("| strategy | authors' runs"))
    header, docs = docs[first], docs[first:docs.index("", first)]
    names = [c.strip() for c in header.strip("|").split("|")]
    at_90, at_95 = names.index(f"{column}: 90%"), names.index(f"{column}: 95%")
    for strategy, documented in (("BatchBALD", "BatchBALD"), ("BALDDropout", "BALD"),
                                 ("RandomSampling", "Random")):
        cells = [c.strip() for c in next(
            line for line in table if f"| {strategy} |" in line).strip("|").split("|")]
        mean_90, median_90, mean_95, median_95 = cells[3:7]
        row = next(line for line in docs if line.startswith(f"| {documented} | "))
        documented_cells = [c.strip() for c in row.strip("|").split("|")]
        assert documented_cells[at_90] == f"{median_90} ({mean_90})"
        if mean_95.startswith("never"):
            assert documented_cells[at_95] == "never: no seed by 300 labels"
            assert all(r["test_accuracy"] < 0.95 for r in rows if r["strategy"] == strategy)
        else:
            assert documented_cells[at_95] == f"{median_95} ({mean_95})"


GAL_NAMES = {"BALDDropout": "BALD", "VariationRatioDropout": "Var Ratios",
             "EntropySamplingDropout": "Max Entropy", "MeanSTDDropout": "Mean STD",
             "RandomSampling": "Random"}


def _per_seed(folder: str) -> dict[tuple[str, int], list[str]]:
    """(strategy, seed) -> [labels to 90%, labels to 95%, error at the last labels] as
    `python -m deepal.experiments.published` prints them for the export in ``folder``."""
    from deepal.experiments.published import seed_table
    from deepal.experiments.report import load_results

    lines = seed_table(load_results(ROOT / "docs" / "results" / folder), [0.90, 0.95])
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines.splitlines()[2:]]
    return {(c[1], int(c[2])): [c[3], c[4], c[5].split(" ")[0]] for c in cells}


def _documented_rows(first_header_cells: str) -> dict[str, list[str]]:
    """The rows of the docs/results.md table whose header starts with the given cells."""
    docs = (ROOT / "docs" / "results.md").read_text().splitlines()
    first = next(i for i, line in enumerate(docs) if line.startswith(first_header_cells))
    rows = docs[first + 2:docs.index("", first)]
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in rows]
    return {c[0]: c[1:] for c in cells}


def _over_seeds(per_seed: dict[tuple[str, int], list[str]], strategy: str) -> list[str]:
    """The cells of a Gal et al. table over every seed of ``strategy`` in the export: labels
    to 10% and to 5% error ("mean; seed, seed, seed", or the seeds alone when one never gets
    there), and the start of the error at 1,000 labels ("mean% ± ")."""
    seeds = [cells for (name, _), cells in sorted(per_seed.items()) if name == strategy]
    cells = []
    for target in (0, 1):
        reached = [s[target] for s in seeds]
        if "never" in reached:
            cells.append(", ".join(r.replace("never", "not reached") for r in reached))
        else:
            mean = sum(int(r) for r in reached) / len(reached)
            cells.append(f"{mean:.0f}; {', '.join(reached)}")
    errors = [float(s[2].rstrip("%")) for s in seeds]
    return [*cells, f"{sum(errors) / len(errors):.2f}% ± "]


def test_our_gal2017_runs_give_the_documented_table():
    per_seed = _per_seed("gal2017")
    assert {seed for _, seed in per_seed} == {1, 2, 3}
    documented = _documented_rows("| strategy | 10% error (paper) | 10% error (ours: mean;")
    assert set(documented) == set(GAL_NAMES.values())
    for strategy, name in GAL_NAMES.items():
        to_10, to_5, at_1000 = _over_seeds(per_seed, strategy)
        assert documented[name][1] == to_10 and documented[name][3] == to_5, name
        assert documented[name][5].startswith(at_1000), name


def test_the_keras_training_follow_up_gives_the_documented_table():
    early, keras = _per_seed("gal2017"), _per_seed("gal2017_keras")
    keras_seeds = tuple(sorted({seed for _, seed in keras}))
    assert keras_seeds == tuple(range(1, len(keras_seeds) + 1))  # seeds publish in order
    docs = (ROOT / "docs" / "results.md").read_text()
    last = keras_seeds[-1]
    seeds_named = f"1-{last}" if last > 2 else " and ".join(map(str, keras_seeds))
    assert f"### Follow-up: the authors' training recipe (seeds {seeds_named})" in docs
    documented = _documented_rows("| strategy | 10% error (paper) | 10% error (early stopping")
    assert set(documented) == set(GAL_NAMES.values())
    for strategy, name in GAL_NAMES.items():
        cells = documented[name]
        for column, ours in ((1, early), (2, keras)):
            to_10, to_5, at_1000 = _over_seeds(ours, strategy)
            assert cells[column] == to_10 and cells[column + 3] == to_5, (name, column)
            assert cells[column + 6].startswith(at_1000), (name, column)
