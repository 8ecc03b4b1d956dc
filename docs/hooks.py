"""mkdocs hooks of deepal's site.

- The command-line page shows each command's ``--help``, generated from deepal's own parser
  at build time, so the page cannot drift from the commands: a line ``<!-- help: run -->``
  (or ``<!-- help: project init -->``, ``<!-- help: -->`` for the top level) becomes that
  command's help text.
- Docstrings cross-reference in Sphinx's roles (``:class:`~deepal.Data```), which the
  reference pages would show as written: the role goes and a ``~`` keeps the last name.
- The tutorial page is the notebook ``examples/tutorial.ipynb`` itself, read at build time (its
  Markdown cells as they are, its code cells as Python blocks), and the notebook is served
  beside it for download, so the page cannot drift from the notebook the tests run.
- ``deepal.__all__`` adds every strategy's name from the registry (``*STRATEGIES``), which a
  static reading of the sources cannot expand; the strategies have their own reference page, so
  that one message is dropped rather than failing the strict build.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

_SRC = Path(__file__).resolve().parents[1] / "src"
_NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "tutorial.ipynb"
_DOWNLOAD = (
    '!!! note ""\n    This page is the notebook `examples/tutorial.ipynb`: '
    "[download it](tutorial.ipynb) and run it in Jupyter, where it also draws the plot.")
_HELP = re.compile(r"^<!-- help:(?P<command>[ a-z-]*)-->$", flags=re.M)
_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|obj|exc):<code>(~?)([^<]*)</code>")
_WIDTH = "80"  # argparse wraps to $COLUMNS: fixed, so the page does not depend on the terminal


class _DropUnpackedAll(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Unsupported item in deepal.__all__: STRATEGIES" not in record.getMessage()


def on_startup(**kwargs: Any) -> None:
    for name in ("griffe", "mkdocs.plugins.griffe", "mkdocs.plugins.mkdocstrings_handlers"):
        logging.getLogger(name).addFilter(_DropUnpackedAll())


def command_help(words: list[str]) -> str:
    """The ``--help`` text of ``deepal WORDS...`` as deepal's parser prints it."""
    if str(_SRC) not in sys.path:
        sys.path.insert(0, str(_SRC))
    from deepal.cli import build_parser

    parser = build_parser()
    for word in words:
        subparsers = next(action for action in parser._actions
                          if isinstance(action, argparse._SubParsersAction))
        parser = subparsers.choices[word]
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = _WIDTH
    try:
        return parser.format_help().rstrip()
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous


def notebook_markdown(path: Path) -> str:
    """A notebook as a page: its Markdown cells as they are, its code cells as Python blocks,
    and after its first cell a note that says where the notebook is."""
    parts = []
    for cell in json.loads(path.read_text())["cells"]:
        source = "".join(cell["source"]).strip()
        parts.append(f"```python\n{source}\n```" if cell["cell_type"] == "code" else source)
    return "\n\n".join([*parts[:1], _DOWNLOAD, *parts[1:]]) + "\n"


def on_files(files: Files, config: MkDocsConfig) -> Files:
    files.append(File.generated(config, "tutorial.md", content=notebook_markdown(_NOTEBOOK)))
    files.append(File.generated(config, "tutorial.ipynb", abs_src_path=str(_NOTEBOOK)))
    return files


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    return _HELP.sub(lambda m: "```text\n" + command_help(m["command"].split()) + "\n```",
                     markdown)


def on_page_content(html: str, **kwargs: Any) -> str:
    return _ROLE.sub(lambda m: f"<code>{m[2].rsplit('.', 1)[-1] if m[1] else m[2]}</code>", html)
