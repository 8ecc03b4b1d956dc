"""The README's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_has_examples():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("number", range(len(BLOCKS)))
def test_readme_example_runs(number: int, capsys):
    namespace: dict[str, object] = {"__name__": f"readme_example_{number}"}
    exec(compile(BLOCKS[number], f"README.md example {number}", "exec"), namespace)
