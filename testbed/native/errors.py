"""What the native stack's control reports: failures (``StackError``) and progress events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

Phase = Literal["waiting", "starting", "healthy", "failed", "already running"]
EventCallback = Callable[[str, Phase, str], None]


class StackError(RuntimeError):
    """One clear line naming the fix; ``detail`` may hold log lines worth showing."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


def no_event(_name: str, _phase: Phase, _detail: str) -> None:
    """The default listener: progress is not shown."""
