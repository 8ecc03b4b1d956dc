"""The tutorial notebook runs from top to bottom in a fresh kernel, as a reader would run it,
and draws the learning curves it computes: one point per round for each of its strategies."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "tutorial.ipynb"

# Appended to the executed copy: what the notebook computed and what its figure shows.
REPORT = """
import json
print(json.dumps({
    "sizes": [N_INIT, N_QUERY, N_ROUNDS],
    "curves": curves,
    "plotted": {line.get_label(): [[float(x), float(y)] for x, y in line.get_xydata()]
                for line in fig.axes[0].get_lines()},
}))
"""


@pytest.fixture(scope="module")
def executed() -> Any:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(REPORT))
    # the kernel imports this checkout's deepal, on one thread like the rest of the tests
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])}
    env.setdefault("OMP_NUM_THREADS", "1")
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute(env=env)  # raises CellExecutionError, naming the cell, on any error
    return notebook


def _outputs(notebook: Any) -> list[dict[str, Any]]:
    return [output for cell in notebook.cells if cell.cell_type == "code"
            for output in cell.outputs]


def test_the_notebook_is_stored_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


def test_the_notebook_runs_cleanly_and_draws_a_figure(executed):
    outputs = _outputs(executed)
    assert not [o for o in outputs if o.output_type == "error"]
    warnings = [o.text for o in outputs if o.output_type == "stream" and o.name == "stderr"]
    assert not warnings, warnings
    assert any("image/png" in o.get("data", {}) for o in outputs)


def test_the_curves_have_one_point_per_round(executed):
    report = json.loads(_outputs(executed)[-1].text)
    n_init, n_query, n_rounds = report["sizes"]
    curves = report["curves"]
    assert set(curves) == {"RandomSampling", "MarginSampling"}
    assert report["plotted"] == curves
    for curve in curves.values():
        labels = [n for n, _ in curve]
        assert labels == [n_init + n_query * rnd for rnd in range(n_rounds + 1)]
        accuracy = [a for _, a in curve]
        assert all(0 <= a <= 1 for a in accuracy)
        assert accuracy[-1] > accuracy[0] + 0.1  # the labels the oracle gave were learnt from
