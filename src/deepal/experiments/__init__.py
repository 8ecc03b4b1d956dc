"""Running the active learning loop and recording what happened."""

from deepal.experiments.loop import RoundResult, run_loop

__all__ = ["RoundResult", "run_loop"]
