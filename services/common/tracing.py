"""W3C trace context (``traceparent``) carried in a context variable across REST and AMQP hops.

Each service hop opens a new span in the same trace: log lines of one order share ``trace.id``
whichever service wrote them. The request id (``X-Request-ID``) is kept beside it as ``transaction.id``.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass

TRACEPARENT = "traceparent"
REQUEST_ID = "x-request-id"
_HEX = frozenset("0123456789abcdef")
_REQUEST_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
# Trace and span ids must be unique, not secret (W3C trace context): a PRNG seeded from the OS spares
# a getrandom() syscall per span; a forked child is reseeded so it never repeats its parent's ids.
_ids = random.Random()
os.register_at_fork(after_in_child=_ids.seed)


@dataclass(frozen=True, slots=True)
class TraceContext:
    trace_id: str
    span_id: str
    request_id: str
    sampled: bool = True

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{'01' if self.sampled else '00'}"

    def child(self) -> TraceContext:
        """A new span in the same trace (for an outgoing call or a consumed message)."""
        return TraceContext(self.trace_id, _new_span_id(), self.request_id, self.sampled)

    def headers(self) -> dict[str, str]:
        """Headers that carry this context to the next hop (HTTP or AMQP)."""
        return {TRACEPARENT: self.child().traceparent, REQUEST_ID: self.request_id}


def _new_trace_id() -> str:
    return f"{_ids.getrandbits(128) or 1:032x}"  # never all zeros (invalid)


def _new_span_id() -> str:
    return f"{_ids.getrandbits(64) or 1:016x}"


def new_request_id() -> str:
    return f"{_ids.getrandbits(64):016x}"


def _is_hex(text: str, length: int) -> bool:
    return len(text) == length and _HEX.issuperset(text)


def _valid_request_id(request_id: str) -> bool:
    return 0 < len(request_id) <= 128 and _REQUEST_ID_CHARS.issuperset(request_id)


def from_headers(traceparent: str | None, request_id: str | None) -> TraceContext:
    """Continue the caller's trace when its ``traceparent`` is valid, else start a new one.

    Valid: ``00-<32 hex>-<16 hex>-<2 hex>``, neither id all zeros. Checked with set operations, not a
    regular expression: this runs on every request.
    """
    rid = request_id if request_id and _valid_request_id(request_id) else new_request_id()
    if traceparent:
        parts = traceparent.strip().lower().split("-")
        if (
            len(parts) == 4
            and parts[0] == "00"
            and _is_hex(parts[1], 32)
            and _is_hex(parts[2], 16)
            and _is_hex(parts[3], 2)
            and parts[1] != _ZERO_TRACE
            and parts[2] != _ZERO_SPAN
        ):
            sampled = int(parts[3], 16) & 1 == 1
            return TraceContext(parts[1], _new_span_id(), rid, sampled)
    return TraceContext(_new_trace_id(), _new_span_id(), rid)


_current: ContextVar[TraceContext | None] = ContextVar("trace_context", default=None)


def current() -> TraceContext | None:
    return _current.get()


def current_or_new() -> TraceContext:
    return _current.get() or from_headers(None, None)


def set_current(context: TraceContext) -> Token[TraceContext | None]:
    """Make ``context`` the active one (``reset_current(token)`` when done); ``activate`` in one call."""
    return _current.set(context)


def reset_current(token: Token[TraceContext | None]) -> None:
    _current.reset(token)


@contextmanager
def activate(context: TraceContext) -> Iterator[TraceContext]:
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)
