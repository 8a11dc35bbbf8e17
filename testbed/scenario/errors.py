"""Exit codes and the one error type for bad scenario input.

Exit code 1 means "an assertion failed"; 2 means "the input (scenario, experiment, stack) is wrong":
CI must be able to tell a breached SLO from a typo.
"""

from __future__ import annotations

from enum import IntEnum
from pathlib import Path


class ExitCode(IntEnum):
    PASSED = 0
    ASSERTION_FAILED = 1
    BAD_INPUT = 2


class ScenarioInputError(Exception):
    """A scenario, experiment or environment problem the user must fix; rendered as one line."""

    def __init__(self, source: Path | str, where: str, problem: str, fix: str) -> None:
        self.source = str(source)
        self.where = where
        self.problem = problem
        self.fix = fix
        super().__init__(self.one_line())

    def one_line(self) -> str:
        location = f"{self.source}:{self.where}" if self.where else self.source
        return f"{location}: {self.problem} — fix: {self.fix}"
