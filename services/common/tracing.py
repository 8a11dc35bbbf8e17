"""W3C trace context (``traceparent``) carried in a context variable across REST and AMQP hops.

Each service hop opens a new span in the same trace: log lines of one order share ``trace.id``
whichever service wrote them. The request id (``X-Request-ID``) is kept beside it as ``transaction.id``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace

TRACEPARENT = "traceparent"
REQUEST_ID = "x-request-id"
_TRACEPARENT_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass(frozen=True)
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
        return replace(self, span_id=secrets.token_hex(8))

    def headers(self) -> dict[str, str]:
        """Headers that carry this context to the next hop (HTTP or AMQP)."""
        return {TRACEPARENT: self.child().traceparent, REQUEST_ID: self.request_id}


def _new_trace_id() -> str:
    trace_id = secrets.token_hex(16)
    return trace_id if trace_id != "0" * 32 else _new_trace_id()


def new_request_id() -> str:
    return secrets.token_hex(8)


def from_headers(traceparent: str | None, request_id: str | None) -> TraceContext:
    """Continue the caller's trace when its ``traceparent`` is valid, else start a new one."""
    match = _TRACEPARENT_RE.match(traceparent.strip().lower()) if traceparent else None
    rid = request_id if request_id and _REQUEST_ID_RE.match(request_id) else new_request_id()
    if match and match.group(1) != "0" * 32 and match.group(2) != "0" * 16:
        sampled = int(match.group(3), 16) & 1 == 1
        return TraceContext(
            trace_id=match.group(1), span_id=secrets.token_hex(8), request_id=rid, sampled=sampled
        )
    return TraceContext(trace_id=_new_trace_id(), span_id=secrets.token_hex(8), request_id=rid)


_current: ContextVar[TraceContext | None] = ContextVar("trace_context", default=None)


def current() -> TraceContext | None:
    return _current.get()


def current_or_new() -> TraceContext:
    return _current.get() or from_headers(None, None)


@contextmanager
def activate(context: TraceContext) -> Iterator[TraceContext]:
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)
