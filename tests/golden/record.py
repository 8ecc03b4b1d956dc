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
    """Run the golden experiment into ``output``; per strategy, each round's labels,
    queried pool indices and test accuracy."""
    from deepal.experiments.config import parse_config
    from deepal.experiments.runner import run_experiment
    from deepal.experiments.store import RunStore

    try:
        import tomllib
    except ImportError:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    config = parse_config(tomllib.loads(CONFIG))
    run_experiment(config, output)
    runs: dict[str, list[dict[str, object]]] = {}
    for strategy in config.strategies:
        checkpoint = RunStore(output, f"digits-{strategy}-seed7").load()
        assert checkpoint is not None
        runs[strategy] = [{"round": row["round"], "n_labeled": row["n_labeled"],
                           "queried": row["queried"], "test_accuracy": row["test_accuracy"]}
                          for row in checkpoint["rounds"]]
    return runs


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        runs = golden_runs(Path(folder))
    lines = [f" {json.dumps(name)}: [\n" + ",\n".join(f"  {json.dumps(row)}" for row in rows)
             + "\n ]" for name, rows in runs.items()]
    (HERE / "digits_runs.json").write_text("{\n" + ",\n".join(lines) + "\n}\n")
    print("recorded", ", ".join(runs), file=sys.stderr)
