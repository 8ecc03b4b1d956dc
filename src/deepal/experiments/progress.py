"""Showing an experiment's progress: on a terminal, an overall bar and one live line per
running run; in a log (not a terminal), one plain line per round; quiet, nothing."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from tqdm.auto import tqdm

from deepal.experiments.spec import Event


class Progress:
    """Receives the runs' progress events (call it with each) and displays them.

    Parameters
    ----------
    total_rounds:
        Rounds of all runs together (round 0 included), for the overall bar.
    done_rounds:
        Of which already done by an earlier, interrupted call.
    mode:
        ``"live"`` (bars), ``"lines"`` (one line per round) or ``"quiet"``; default live on a
        terminal, lines otherwise.
    """

    def __init__(self, total_rounds: int, done_rounds: int = 0, mode: str | None = None,
                 stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.mode = mode or ("live" if self.stream.isatty() else "lines")
        self.total, self.done = total_rounds, done_rounds
        self.bars: dict[str, Any] = {}
        self.positions: dict[str, int] = {}
        self.overall = None
        if self.mode == "live":
            self.overall = tqdm(total=total_rounds, initial=done_rounds, desc="experiment",
                                unit="round", position=0, file=self.stream, dynamic_ncols=True)

    def __call__(self, event: Event) -> None:
        kind, run = event["event"], event["run"]
        if kind == "round":
            self.done += 1
            accuracy = event["test_accuracy"]
            text = (f"round {event['round']}/{event['n_round']}, {event['n_labeled']} labels, "
                    f"accuracy {'-' if accuracy is None else format(accuracy, '.4f')}")
            if self.mode == "lines":
                print(f"[{self.done}/{self.total}] {run}: {text}", file=self.stream, flush=True)
            elif self.mode == "live":
                self._bar(run).set_description_str(f"{run}: {text}")
                self._bar(run).refresh()
                if self.overall is not None:
                    self.overall.update(1)
        elif kind == "start" and self.mode == "live":
            self._bar(run).set_description_str(f"{run}: starting at round {event['round']}")
        elif kind == "done":
            if self.mode == "lines" and event.get("skipped"):
                print(f"{run}: already complete", file=self.stream, flush=True)
            bar = self.bars.pop(run, None)
            self.positions.pop(run, None)
            if bar is not None:
                bar.close()

    def _bar(self, run: str) -> Any:
        if run not in self.bars:
            used = set(self.positions.values())
            position = next(p for p in range(1, len(self.bars) + 2) if p not in used)
            self.positions[run] = position
            self.bars[run] = tqdm(total=0, position=position, bar_format="{desc}",
                                  file=self.stream, leave=False, dynamic_ncols=True)
        return self.bars[run]

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()
        if self.overall is not None:
            self.overall.close()
            self.overall = None
