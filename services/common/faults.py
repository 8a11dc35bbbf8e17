"""Fault injection for chaos experiments, switched at run time like feature flags.

``PUT /admin/faults`` (bearer token) sets an error rate, an added latency and blackholed dependencies,
each with an expiry so a forgotten fault switches itself off; ``DELETE`` clears them. Every change is
logged and counted. Without a configured token the admin endpoint does not exist (404).
"""

from __future__ import annotations

import hmac
import logging
import random
import time
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.common import metrics, redaction
from services.common.problems import ProblemError, problem_response
from services.common.request_body import read_json

logger = logging.getLogger("shop.faults")
MAX_TTL_S = 3600


class FaultSpec(BaseModel):
    """The body of ``PUT /admin/faults``."""

    model_config = ConfigDict(extra="forbid")

    error_rate: float = Field(default=0.0, ge=0.0, le=1.0, description="Share of requests answered 500")
    latency_ms: int = Field(default=0, ge=0, le=30_000, description="Delay added before each request")
    blackhole: list[str] = Field(default_factory=list, description="Targets whose calls hang, then fail")
    ttl_s: int = Field(default=300, gt=0, le=MAX_TTL_S, description="Seconds until the faults switch off")
    log_redaction: bool = Field(
        default=True, description="false: log lines are written unredacted (the privacy check's sabotage)"
    )


@dataclass
class FaultState:
    service: str
    spec: FaultSpec = field(default_factory=FaultSpec)
    expires_at: float = 0.0

    def active(self) -> FaultSpec | None:
        """The faults in force, or None (clearing them, logged and counted, once expired)."""
        if self.expires_at == 0.0:
            return None
        if time.monotonic() >= self.expires_at:
            self._apply(FaultSpec(), "expired")
            return None
        return self.spec

    def set(self, spec: FaultSpec) -> None:
        self._apply(spec, "set")

    def clear(self) -> None:
        self._apply(FaultSpec(), "cleared")

    def should_fail(self) -> bool:
        spec = self.active()
        return spec is not None and spec.error_rate > 0 and random.random() < spec.error_rate

    def added_latency_s(self) -> float:
        spec = self.active()
        return spec.latency_ms / 1000 if spec else 0.0

    def is_blackholed(self, target: str) -> bool:
        spec = self.active()
        return spec is not None and target in spec.blackhole

    def _apply(self, spec: FaultSpec, action: str) -> None:
        self.spec = spec
        self.expires_at = time.monotonic() + spec.ttl_s if action == "set" else 0.0
        redaction.SWITCH.enabled = spec.log_redaction
        metrics.fault_injection_changes.labels(self.service, action).inc()
        metrics.fault_injection_active.labels(self.service, "error_rate").set(spec.error_rate)
        metrics.fault_injection_active.labels(self.service, "latency_ms").set(spec.latency_ms)
        metrics.fault_injection_active.labels(self.service, "blackhole").set(len(spec.blackhole))
        logger.warning(
            "fault injection %s",
            action,
            extra={
                "event.action": f"fault-{action}",
                "event.kind": "event",
                "event.category": ["configuration"],
                "fault.error_rate": spec.error_rate,
                "fault.latency_ms": spec.latency_ms,
                "fault.blackhole": spec.blackhole,
                "fault.ttl_s": spec.ttl_s if action == "set" else 0,
                "fault.log_redaction": spec.log_redaction,
            },
        )

    def describe(self) -> dict[str, object]:
        spec = self.active()
        if spec is None:
            return {"active": False}
        remaining_s = round(self.expires_at - time.monotonic(), 1)
        return {"active": True, **spec.model_dump(), "expires_in_s": remaining_s}


def admin_routes(state: FaultState, token: str | None) -> list[Route]:
    """The admin endpoint, or nothing when no token is configured."""
    if not token:
        return []
    expected = f"Bearer {token}".encode()

    def authorize(request: Request) -> None:
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            raise ProblemError(401, "Unauthorized", "a valid bearer token is required")

    async def faults(request: Request) -> Response:
        authorize(request)
        if request.method == "PUT":
            try:
                state.set(FaultSpec.model_validate(await read_json(request, 4096)))
            except ValidationError as error:
                return problem_response(
                    422,
                    "Invalid fault specification",
                    str(error.errors()[0]["msg"]),
                    errors=error.errors(include_url=False, include_context=False),
                )
        elif request.method == "DELETE":
            state.clear()
        return JSONResponse(state.describe())

    return [Route("/admin/faults", faults, methods=["GET", "PUT", "DELETE"])]
