"""The documentation holds: its Python blocks run, its commands exist, every public name has a
numpydoc docstring whose examples pass and a place in the API reference, and the project speaks
only of itself."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import inspect
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from deepal.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
PUBLIC_PACKAGES = ["deepal", "deepal.config", "deepal.data", "deepal.data.sources",
                   "deepal.experiments", "deepal.labeling", "deepal.nets", "deepal.sharded"]


def _blocks(language: str) -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for number, block in enumerate(
                re.findall(rf"```{language}\n(.*?)```", page.read_text(), flags=re.S)):
            found.append((f"{page.relative_to(ROOT)} {language} block {number}", block))
    return found


PYTHON_BLOCKS = _blocks("python")
#: Python shown as ``py`` blocks needs the reader's own files (a project, its model.pt): it is
#: compiled and its imports are run, and the code itself is tested where it lives.
SKETCH_BLOCKS = _blocks("py")
SHELL_BLOCKS = _blocks("bash")


def test_the_readme_is_a_front_door():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    first_screen = readme.split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)```", first_screen, flags=re.S)
    assert [c.strip() for c in commands] == ["tools/setup.sh && .venv/bin/deepal run",
                                             ".venv/bin/python -m pytest"]


def test_ci_sets_up_with_the_readmes_script():
    ci = (ROOT / ".ci" / "run").read_text()
    setup = (ROOT / "tools" / "setup.sh").read_text()
    assert "tools/setup.sh" in ci and "pip install" not in ci
    assert ".venv/bin/python -m pytest" in ci and "mkdocs build --strict" in ci
    assert setup.index("torch==2.13.0") < setup.index('-e ".[')
    extras = re.search(r'-e "\.\[([a-z,-]+)\]"', setup)
    assert extras is not None
    assert set(extras[1].split(",")) == {"dev", "images", "tables", "text", "browser-tests",
                                         "plot", "ray", "docs"}


@pytest.mark.parametrize("name, block", PYTHON_BLOCKS, ids=[n for n, _ in PYTHON_BLOCKS])
def test_python_block_runs(name: str, block: str, capsys):
    namespace: dict[str, object] = {"__name__": name.replace(" ", "_")}
    exec(compile(block, name, "exec"), namespace)


@pytest.mark.parametrize("name, block", SKETCH_BLOCKS, ids=[n for n, _ in SKETCH_BLOCKS])
def test_python_sketch_compiles_and_its_imports_exist(name: str, block: str):
    compile(block, name, "exec")
    imports = "\n".join(line for line in block.splitlines()
                        if re.match(r"(from \S+ )?import ", line))
    assert imports, f"{name} imports nothing from deepal"
    exec(compile(imports, name, "exec"), {})


def _commands(block: str) -> list[list[str]]:
    """The commands of a shell block: continuation lines joined, split at ``&&``, comments
    dropped."""
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        while words:
            end = words.index("&&") if "&&" in words else len(words)
            commands.append(words[:end])
            words = words[end + 1:]
    return commands


def _check_command(argv: list[str]) -> None:
    program = Path(argv[0]).name
    if program == "deepal":
        try:
            build_parser().parse_args(argv[1:])
        except SystemExit as error:  # argparse's way of refusing an unknown command or option
            raise AssertionError(f"deepal does not take: {shlex.join(argv)}") from error
    elif program.startswith("python") and argv[1:2] == ["-m"]:
        module = argv[2]
        assert module == "pytest" or importlib.util.find_spec(module) is not None, argv
    elif program.startswith("python") or "/" in argv[0]:
        path = argv[1] if program.startswith("python") else argv[0]
        assert (ROOT / path).is_file(), f"{path} does not exist"


@pytest.mark.parametrize("name, block", SHELL_BLOCKS, ids=[n for n, _ in SHELL_BLOCKS])
def test_documented_commands_exist(name: str, block: str, monkeypatch):
    monkeypatch.chdir(ROOT)
    for argv in _commands(block):
        program = Path(argv[0]).name
        installed = argv[0].startswith(".venv/bin/")  # made by tools/setup.sh, not committed
        if program in {"deepal", "python", "python3"} or ("/" in argv[0] and not installed):
            _check_command(argv)


def test_the_command_line_page_shows_every_command():
    page = (ROOT / "docs" / "guide" / "cli.md").read_text()
    shown = set(re.findall(r"^<!-- help: ?([a-z -]*?) ?-->$", page, flags=re.M))
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    expected = {""} | {name for name in commands if name != "project"} | {"project init"}
    assert shown == expected


def _public() -> dict[str, Any]:
    """Every public class and function: ``deepal.__all__`` and the subpackages' ``__all__``,
    by the first name it is exported under."""
    found: dict[str, Any] = {}
    seen: set[int] = set()
    for package in PUBLIC_PACKAGES:
        module = importlib.import_module(package)
        for name in module.__all__:
            obj = getattr(module, name)
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and id(obj) not in seen:
                seen.add(id(obj))
                found[f"{package}.{name}"] = obj
    return found


PUBLIC = _public()


def _takes_parameters(obj: Any) -> bool:
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):  # an exception class: documented by its message
        return False
    return any(p.name not in {"self", "args", "kwargs"} for p in signature.parameters.values())


def test_the_public_api_is_walked():
    assert "deepal.Data" in PUBLIC and "deepal.MarginSampling" in PUBLIC
    assert "deepal.nets.MLP" in PUBLIC and "deepal.labeling.Project" in PUBLIC
    assert len(PUBLIC) > 60


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_name_has_a_numpydoc_docstring(name: str):
    obj = PUBLIC[name]
    doc = inspect.getdoc(obj) or ""
    assert doc, f"{name} has no docstring"
    sections = set(re.findall(r"^(\w[\w ]*)\n-{3,}$", doc, flags=re.M))
    missing = {"Examples"} - sections
    if _takes_parameters(obj):
        missing |= {"Parameters"} - sections
    if inspect.isfunction(obj) and inspect.signature(obj).return_annotation not in (
            None, "None", inspect.Signature.empty):
        missing |= {"Returns"} - sections - ({"Returns"} if "Yields" in sections else set())
    assert not missing, f"{name}'s docstring lacks {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_docstring_examples_pass(name: str):
    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    obj = PUBLIC[name]
    # as doctest runs a module's examples: in the namespace of the module that defines them
    namespace = dict(vars(importlib.import_module(obj.__module__)))
    for test in finder.find(obj, name, globs=namespace):
        runner.run(test)
    assert runner.failures == 0, f"{runner.failures} example(s) of {name} fail"


def test_every_public_name_is_in_the_api_reference():
    reference = "\n".join(p.read_text() for p in (ROOT / "docs" / "reference").glob("*.md"))
    documented = set(re.findall(r"^::: ([\w.]+)$", reference, flags=re.M))
    for name, obj in PUBLIC.items():
        canonical = f"{obj.__module__}.{obj.__qualname__}"
        assert canonical in documented or obj.__module__ in documented or name in documented, (
            f"{name} ({canonical}) is on no page of docs/reference")


# Tracker numbers and the history of the work: the word issue or session followed by a
# number, or the tracker's own word for a task.
HISTORY = re.compile(
    r"\bissues?[ #-]?\d+|\bsessions? \d+|\bwork(ing)? session|\bwork[ -]items?\b", flags=re.I)
# experiments/ and docs/results/ too: the shipped configs, and the configs and manifests of the
# published runs, whose comments users read beside the results
SPOKEN_OF = ["README.md", "mkdocs.yml", "pyproject.toml", ".ci", "tools", "docs", "src",
             "tests", "benchmarks", "examples", "experiments"]


def test_the_project_speaks_only_of_itself():
    files = subprocess.run(["git", "ls-files", "--", *SPOKEN_OF], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split()
    assert {"README.md", "docs/results.md", "experiments/gal2017.toml",
            "docs/results/gal2017/manifest.json", "examples/tutorial.ipynb"} <= set(files)
    found = []
    for file in files:
        try:
            text = (ROOT / file).read_text()
        except (UnicodeDecodeError, IsADirectoryError, FileNotFoundError):
            continue  # figures and other binary files
        found += [f"{file}: {m[0]}" for m in HISTORY.finditer(text)]
    assert not found, found


def test_the_documented_results_columns_are_the_written_ones():
    from deepal.experiments.store import COLUMNS

    page = (ROOT / "docs" / "guide" / "experiments.md").read_text()
    bullet = page.split("- `results.csv`", 1)[1].split("\n- `manifest.json`", 1)[0]
    assert re.findall(r"`(\w+)`", bullet) == list(COLUMNS)
