"""The ASGI instrumentation every service runs: trace context, access log, RED metrics, faults, problems."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common import logs, metrics, tracing
from services.common.faults import FaultState
from services.common.logs import ACCESS_LOGGER
from services.common.problems import ProblemError, problem_response

access_logger = logging.getLogger(ACCESS_LOGGER)
logger = logging.getLogger("shop.http")
# Probes and scrapes: served and measured, but access-logged at debug level and exempt from faults.
OPERATIONAL_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json", "/admin/faults"})


def route_template(scope: Scope) -> str:
    """The matched route's template (``/orders/{order_id}``), never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else metrics.UNMATCHED_ROUTE


_TRACEPARENT_HEADER = tracing.TRACEPARENT.encode()
_REQUEST_ID_HEADER = tracing.REQUEST_ID.encode()


class InstrumentationMiddleware:
    def __init__(
        self, app: ASGIApp, service: str, faults: FaultState, routes: Sequence[BaseRoute] = ()
    ) -> None:
        self.app = app
        self.service = service
        self.faults = faults
        # The app's routes: an injected failure is answered before routing, yet must be counted under
        # its route template so the per-route SLOs see it.
        self.routes = routes
        self.in_flight = metrics.http_requests_in_flight.labels(service)
        # (method, route, status) -> its counter and histogram children: ``labels()`` hashes and locks
        # on every call, these are resolved once per route and status.
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        traceparent = request_id = None
        for name, value in scope["headers"]:  # lower-cased by the server; only two are wanted
            if name == _TRACEPARENT_HEADER:
                traceparent = value.decode("latin-1")
            elif name == _REQUEST_ID_HEADER:
                request_id = value.decode("latin-1")
        context = tracing.from_headers(traceparent, request_id)
        started = time.perf_counter()
        status = 500
        response_started = False
        trace_headers = (
            (b"x-request-id", context.request_id.encode()),
            (b"traceparent", context.traceparent.encode()),
        )

        async def send_instrumented(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *trace_headers]
            await send(message)

        operational = scope["path"] in OPERATIONAL_PATHS
        self.in_flight.inc()
        token = tracing.set_current(context)
        try:
            if not operational and await self._inject_faults(scope, receive, send_instrumented):
                return
            await self.app(scope, receive, send_instrumented)
        except Exception:
            # Log the trace here; the client only gets a problem document.
            logger.exception("unhandled error serving %s %s", scope["method"], scope["path"])
            if not response_started:
                response = problem_response(
                    500, "Internal error", "the error was logged", request_id=context.request_id
                )
                await response(scope, receive, send_instrumented)
        finally:
            self.in_flight.dec()
            self._observe(scope, context, status, time.perf_counter() - started, operational)
            tracing.reset_current(token)

    async def _inject_faults(self, scope: Scope, receive: Receive, send: Send) -> bool:
        if self.faults.active() is None:  # the usual case: one comparison
            return False
        delay = self.faults.added_latency_s()
        if delay:
            await asyncio.sleep(delay)
        if self.faults.should_fail():
            self._label_route(scope)
            response = problem_response(500, "Injected fault", "fault injection is active")
            await response(scope, receive, send)
            return True
        return False

    def _label_route(self, scope: Scope) -> None:
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                scope["route"] = route
                return

    def _observe(
        self, scope: Scope, context: tracing.TraceContext, status: int, elapsed_s: float, operational: bool
    ) -> None:
        route = route_template(scope)
        method = scope["method"]
        series = self._series.get((method, route, status))
        if series is None:
            series = self._series[(method, route, status)] = (
                metrics.http_requests.labels(self.service, method, route, str(status)),
                metrics.http_request_duration.labels(self.service, method, route),
            )
        series[0].inc()
        series[1].observe(elapsed_s)
        level = (
            logging.DEBUG
            if operational
            else (logging.ERROR if status >= 500 else logging.WARNING if status >= 400 else logging.INFO)
        )
        if access_logger.isEnabledFor(level):
            logs.access_log.write(
                level, method, scope["path"], status, route, elapsed_s, context, scope.get("client")
            )


async def problem_from_exception(_request: Request, exc: Exception) -> Response:
    """Exception handler: ProblemError and Starlette's HTTPException become problem documents."""
    if isinstance(exc, ProblemError):
        level = logging.WARNING if exc.status < 500 else logging.ERROR
        logger.log(
            level,
            "%s %s",
            exc.title,
            exc.detail,
            extra={"http.response.status_code": exc.status, "error.type": "ProblemError"},
        )
        return problem_response(exc.status, exc.title, exc.detail, **exc.extensions)
    status = getattr(exc, "status_code", 500)
    detail = getattr(exc, "detail", "") or ""
    headers = getattr(exc, "headers", None)
    return problem_response(status, _title(status), str(detail), headers=headers)


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
