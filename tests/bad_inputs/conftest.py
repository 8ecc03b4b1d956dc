"""Prints how many bad inputs the suite tried, by entry point, and fails a complete run of the
suite that tried fewer than ``refusals.MINIMUM``."""

from __future__ import annotations

from pathlib import Path

import pytest
from refusals import ACCEPTED, MINIMUM, REFUSED

SUITE = Path(__file__).parent


def _suite_files(items: list[pytest.Item]) -> set[Path]:
    return {Path(item.path) for item in items if Path(item.path).parent == SUITE}


def _whole_suite_ran(session: pytest.Session) -> bool:
    options = session.config.option
    if getattr(options, "keyword", "") or getattr(options, "markexpr", ""):
        return False
    every_file = set(SUITE.glob("test_*.py"))
    return every_file <= _suite_files(list(getattr(session, "items", [])))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not REFUSED and not ACCEPTED:
        return
    write = terminalreporter.write_line
    write(f"bad inputs refused: {sum(REFUSED.values())} "
          f"(and {sum(ACCEPTED.values())} generated inputs that were valid, read exactly)")
    by_entry: dict[str, int] = {}
    for (entry, _kind), n in REFUSED.items():
        by_entry[entry] = by_entry.get(entry, 0) + n
    for entry, n in sorted(by_entry.items()):
        kinds = ", ".join(f"{kind} {count}" for (e, kind), count in sorted(REFUSED.items())
                          if e == entry)
        write(f"  {entry}: {n} ({kinds})")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if exitstatus == 0 and _whole_suite_ran(session) and sum(REFUSED.values()) < MINIMUM:
        session.config.get_terminal_writer().line(
            f"the bad-input suite refused only {sum(REFUSED.values())} inputs; at least "
            f"{MINIMUM} are required", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
