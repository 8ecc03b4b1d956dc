"""Sharded queries from the command line: ``deepal query --query-backend local`` and an
experiment's ``[query]`` table give exactly the picks of the query in one process. (The same
with Ray, on a real local cluster, is in ``test_sharded_ray.py``.)"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from _projects import CLASSES, make_project, picks

from deepal.cli import main
from deepal.experiments.config import load_config

from _experiment_configs import write_config


@pytest.mark.parametrize("strategy", ["MarginSampling", "KCenterGreedy", "KMeansSampling",
                                      "BALDDropout"])
def test_deepal_query_over_shards_picks_what_the_single_process_query_picks(tmp_path, capsys,
                                                                            strategy):
    one = make_project(tmp_path / "one", strategy)
    sharded = tmp_path / "sharded"
    shutil.copytree(one.parent, sharded)
    for _ in range(2):  # the second round: another model, the next seed
        assert main(["query", "-n", "9", "-p", str(one), "--threads", "1"]) == 0
        assert main(["query", "-n", "9", "-p", str(sharded / "proj"), "--threads", "1",
                     "--query-backend", "local", "--shards", "3"]) == 0
        expected = picks(one)
        assert len(expected) == 9 and picks(sharded / "proj") == expected
        labels = [["item", "label"]] + [[i, CLASSES[i % 3]] for i in expected]
        for project in (one, sharded / "proj"):
            with open(project.parent / "round.csv", "w", newline="") as f:
                csv.writer(f).writerows(labels)
            assert main(["import-labels", str(project.parent / "round.csv"), "-p",
                         str(project)]) == 0
    assert f"{strategy} picked 9" in capsys.readouterr().out


def results_picks(output: Path) -> list[tuple[str, str]]:
    with open(output / "results.csv") as f:
        return sorted((row["strategy"], row["queried"]) for row in csv.DictReader(f)
                      if row["round"] != "0")


def test_an_experiments_query_table_shards_its_queries_with_the_same_picks(tmp_path, capsys):
    strategies = '["MarginSampling", "KCenterGreedy"]'
    plain = write_config(tmp_path, strategies=strategies, seeds="[1]", name="plain.toml")
    sharded = write_config(tmp_path, strategies=strategies, seeds="[1]", name="sharded.toml")
    sharded.write_text(sharded.read_text() + '\n[query]\nbackend = "local"\nshards = 3\n')
    assert load_config(sharded).query.n_shards == 3
    for config in (plain, sharded):
        assert main(["experiment", str(config), "--output", str(tmp_path / config.stem),
                     "--quiet", "--workers", "1"]) == 0
    expected = results_picks(tmp_path / "plain")
    assert len(expected) == 6 and all(queried for _, queried in expected)  # 3 rounds x 2
    assert results_picks(tmp_path / "sharded") == expected
    # The same from the command line, over the config without [query]: the same picks.
    assert main(["experiment", str(plain), "--output", str(tmp_path / "cli"), "--quiet",
                 "--workers", "1", "--query-backend", "local", "--shards", "2"]) == 0
    assert results_picks(tmp_path / "cli") == expected
    capsys.readouterr()


def test_deepal_run_over_shards_queries_what_it_queries_in_one_process(tmp_path, capsys):
    def queried(name: str, *options: str) -> list[list[int]]:
        output = tmp_path / f"{name}.json"
        assert main(["run", "--strategy-name", "KCenterGreedy", "--n-round", "2", "--n-query",
                     "10", "--n-epoch", "2", "--quiet", "--output", str(output), *options]) == 0
        return [r["queried"] for r in json.loads(output.read_text())["rounds"]]

    expected = queried("plain")
    assert [len(q) for q in expected] == [0, 10, 10]
    assert queried("sharded", "--query-backend", "local", "--shards", "3") == expected
    capsys.readouterr()
