"""Typed exceptions raised at deepal's public entry points.

Every message names the problem and, where there is one, the fix. All of them derive from
:class:`DeepALError` (itself a :class:`ValueError`), so ``except DeepALError`` catches any
mistake deepal reports on purpose.
"""

from __future__ import annotations

from collections.abc import Mapping


def first_line(error: BaseException) -> str:
    """The first line of ``error``'s message (its type's name if it has none): what a
    one-line refusal quotes of an error raised by another library.

    Examples
    --------
    >>> first_line(ValueError("bad value\\n  at line 3"))
    'bad value'
    >>> first_line(KeyError())
    'KeyError'
    """
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


class DeepALError(ValueError):
    """Base class of the errors deepal raises for bad input or an impossible request.

    Examples
    --------
    >>> import deepal
    >>> try:
    ...     deepal.get_strategy("NoSuchStrategy")
    ... except DeepALError as error:
    ...     print(type(error).__name__)
    UnknownNameError
    """


class PoolExhaustedError(DeepALError):
    """A query asked for more examples than the unlabeled pool still holds."""


class EmptyPoolError(DeepALError):
    """An operation needs labeled (or unlabeled) examples and there are none."""


class DatasetNotFoundError(DeepALError):
    """A data set's files are missing and could not be downloaded."""


class CorruptDataError(DeepALError):
    """A data file exists but is truncated, corrupted or not in the expected format."""


class UnknownNameError(DeepALError):
    """A data set, network or strategy name that deepal does not know."""


class LabelsUnavailableError(DeepALError):
    """Labels were needed for examples whose labels are unknown (a real, unlabeled pool)."""


class RunBusyError(DeepALError):
    """An experiment's run is being run by another process (on the same output folder)."""


class RunsFailedError(DeepALError):
    """Runs of an experiment raised errors; with ``keep_going`` the others ran to the end.

    ``failures`` maps each failed run's id to its error.
    """

    def __init__(self, failures: Mapping[str, BaseException], n_runs: int) -> None:
        self.failures = dict(failures)
        details = "; ".join(f"{run}: {type(error).__name__}: {error}"
                            for run, error in failures.items())
        super().__init__(
            f"{len(failures)} of {n_runs} runs failed ({details}); the other runs went on to "
            "the end. Fix the cause and run the same command again: complete runs are "
            "skipped and the failed ones continue from their last completed round"
        )
