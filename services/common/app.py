"""Builds a service's Starlette app with the shared endpoints and instrumentation, and serves it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from services.common import metrics
from services.common.faults import FaultState, admin_routes
from services.common.instrumentation import InstrumentationMiddleware, problem_from_exception
from services.common.logs import configure_logging
from services.common.problems import ProblemError
from services.common.server import CoalescingHttpToolsProtocol
from services.common.settings import ServiceSettings, load_settings

logger = logging.getLogger("shop.service")
ReadinessCheck = Callable[[], Awaitable[bool]]
Lifespan = Callable[[Starlette], AbstractAsyncContextManager[None]]


@asynccontextmanager
async def _no_lifespan(_app: Starlette) -> AsyncIterator[None]:
    yield


def model_response(
    model: BaseModel, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A pydantic model as a JSON answer, serialized once by pydantic's own (Rust) encoder.

    ``JSONResponse(model.model_dump())`` builds a dict and then encodes it with the stdlib: twice the work
    on every request of the hot paths (``/catalog``, ``/products``).
    """
    return Response(
        model.model_dump_json(), status_code=status_code, headers=headers, media_type="application/json"
    )


def service_app(
    settings: ServiceSettings,
    routes: Sequence[BaseRoute],
    *,
    openapi: dict[str, Any],
    lifespan: Lifespan = _no_lifespan,
    faults: FaultState | None = None,
    readiness: Callable[[Starlette], dict[str, ReadinessCheck]] | None = None,
) -> Starlette:
    """The service's routes plus /healthz, /readyz, /metrics, /openapi.json and the fault admin.

    ``readiness(app)`` returns the named checks of the service's own dependencies (called per probe).
    """
    faults = faults or FaultState(settings.service_name)
    token = settings.fault_admin_token.get_secret_value() if settings.fault_admin_token else None

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        checks = readiness(request.app) if readiness else {}
        results: dict[str, bool] = {}
        for name, check in checks.items():
            try:
                results[name] = await check()
            except Exception:  # a failing check means "not ready", not a 500
                results[name] = False
        ready = all(results.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": results},
            status_code=200 if ready else 503,
        )

    async def metrics_endpoint(_request: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    async def openapi_endpoint(_request: Request) -> Response:
        return JSONResponse(openapi)

    @asynccontextmanager
    async def lifespan_with_logs(app: Starlette) -> AsyncIterator[None]:
        metrics.service_info.labels(settings.service_name, settings.instance_name).set(1)
        async with lifespan(app):
            logger.info(
                "%s listening on %s:%d",
                settings.instance_name,
                settings.host,
                settings.port,
                extra={"event.action": "service-started"},
            )
            yield
            logger.info(
                "%s stopping: in-flight work finished",
                settings.instance_name,
                extra={"event.action": "service-stopping"},
            )

    shared = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics_endpoint),
        Route("/openapi.json", openapi_endpoint),
    ]
    # The service's own routes first: they carry the traffic, and Starlette tries routes in order.
    all_routes = [*routes, *shared, *admin_routes(faults, token)]
    instrumentation = Middleware(
        InstrumentationMiddleware, service=settings.service_name, faults=faults, routes=all_routes
    )
    app = Starlette(
        routes=all_routes,
        middleware=[instrumentation],
        exception_handlers={ProblemError: problem_from_exception, HTTPException: problem_from_exception},
        lifespan=lifespan_with_logs,
    )
    app.state.settings = settings
    app.state.faults = faults
    return app


def serve[S: ServiceSettings](settings_class: type[S], create_app: Callable[[S], Starlette]) -> None:
    """Entry point of ``python -m services.<name>``: settings, logging, then uvicorn until SIGTERM."""
    settings = load_settings(settings_class)
    configure_logging(settings)
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
        lifespan="on",
        server_header=False,
        http=CoalescingHttpToolsProtocol,  # an answer's head and body in one write
    )
