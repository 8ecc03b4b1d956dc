"""Records the golden runs (``python tests/golden/record.py``): the queried indices and test
accuracies of seeded digits runs, pinned so that a redesign of the code around the
strategies cannot change users' results unnoticed. Rerun only for an intended change."""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).parent

#: Strategies covering the softmax, MC dropout, an ensemble, embeddings, and a training hook.
CONFIG = """
name = "golden"
datasets = ["digits"]
strategies = ["EntropySampling", "BALDDropout", "KCenterGreedy", "MarginSamplingDropout",
              "LossPrediction", "ActiveLearningByLearning"]
seeds = [7]

[loop]
n_init_labeled = 40
n_query = 20
n_round = 3

[training]
epochs = 15
device = "cpu"

[strategy_options.MarginSamplingDropout]
posterior = "ensemble"
n_members = 2
"""


def golden_runs(output: Path) -> dict[str, list[dict[str, object]]]:
    """Run (or resume) the golden experiment into ``output``; per strategy, each round's
    labels, queried pool indices and test accuracy, as ``results.csv`` has them."""
    from deepal.experiments.config import load_config
    from deepal.experiments.runner import run_experiment
    from deepal.experiments.store import read_rows

    run_experiment(load_config(write_config(output)), output)
    runs: dict[str, list[dict[str, object]]] = {}
    for row in read_rows(output / "results.csv"):
        runs.setdefault(row["strategy"], []).append(
            {key: row[key] for key in ("round", "n_labeled", "queried", "test_accuracy")})
    return runs


def write_config(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "golden.toml"
    path.write_text(CONFIG)
    return path


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        runs = golden_runs(Path(folder))
    lines = [f" {json.dumps(name)}: [\n" + ",\n".join(f"  {json.dumps(row)}" for row in rows)
             + "\n ]" for name, rows in runs.items()]
    (HERE / "digits_runs.json").write_text("{\n" + ",\n".join(lines) + "\n}\n")
    print("recorded", ", ".join(runs), file=sys.stderr)
