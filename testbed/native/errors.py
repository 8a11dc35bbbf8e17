"""What the native stack's control reports: the backends' ``StackError`` and progress events."""

from __future__ import annotations

from testbed.backend import EventCallback, Phase, StackError, no_event

__all__ = ["EventCallback", "Phase", "StackError", "no_event"]
