"""REST calls between services: retries only when idempotent, circuit breaker, blackholes, trace headers.

The dependency is a real Starlette app served by uvicorn on a loopback port: the client under test is
the one the services use (aiohttp), over real sockets.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack

import pytest
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.common import tracing
from services.common.client import CircuitBreaker, DependencyClient, DependencyUnavailableError
from services.common.faults import FaultSpec, FaultState
from tests.unit.services.serving import serving


class Flaky:
    """A small real ASGI app that fails its first ``failures`` calls with 503 and records headers."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: Counter[str] = Counter()
        self.traceparents: list[str] = []

    def app(self) -> Starlette:
        async def endpoint(request: Request) -> Response:
            self.calls[request.method] += 1
            self.traceparents.append(request.headers.get("traceparent", ""))
            if sum(self.calls.values()) <= self.failures:
                return JSONResponse({"title": "busy"}, status_code=503)
            return JSONResponse({"ok": True})

        return Starlette(routes=[Route("/thing", endpoint, methods=["GET", "POST", "PUT"])])


@pytest.fixture
async def client_of() -> AsyncIterator[Callable[..., DependencyClient]]:
    """``client_of(flaky, target, faults=None, **kwargs)``: a client of ``flaky`` served for the test."""
    async with AsyncExitStack() as stack:
        clients: list[DependencyClient] = []

        async def make(
            flaky: Flaky, target: str, faults: FaultState | None = None, **kwargs
        ) -> DependencyClient:
            url = await stack.enter_async_context(serving(flaky.app()))
            client = DependencyClient(
                "unit", target, url, faults or FaultState("unit"), backoff_s=0.001, **kwargs
            )
            clients.append(client)
            return client

        yield make
        for client in clients:
            await client.aclose()


def _outcomes(target: str, outcome: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "dependency_requests_total", {"service": "unit", "target": target, "outcome": outcome}
        )
        or 0.0
    )


async def test_idempotent_calls_are_retried(client_of):
    flaky = Flaky(failures=2)
    client = await client_of(flaky, "retry-get")
    assert (await client.request("GET", "/thing")).status_code == 200
    assert flaky.calls["GET"] == 3
    assert _outcomes("retry-get", "server_error") == 2 and _outcomes("retry-get", "success") == 1


async def test_non_idempotent_calls_are_not_retried(client_of):
    flaky = Flaky(failures=1)
    client = await client_of(flaky, "no-retry-post")
    with pytest.raises(DependencyUnavailableError):
        await client.request("POST", "/thing")
    assert flaky.calls["POST"] == 1


async def test_the_circuit_opens_and_fails_fast(client_of):
    flaky = Flaky(failures=100)
    client = await client_of(
        flaky, "breaker", breaker=CircuitBreaker(failure_threshold=3, reset_s=60), max_retries=0
    )
    for _ in range(3):
        with pytest.raises(DependencyUnavailableError):
            await client.request("GET", "/thing")
    with pytest.raises(DependencyUnavailableError, match="circuit open"):
        await client.request("GET", "/thing")
    assert sum(flaky.calls.values()) == 3  # the fourth call never left
    assert REGISTRY.get_sample_value("circuit_breaker_open", {"service": "unit", "target": "breaker"}) == 1


async def test_blackholed_target_times_out_without_calling(client_of):
    faults = FaultState("unit")
    faults.set(FaultSpec(blackhole=["hole"], ttl_s=60))
    flaky = Flaky(failures=0)
    client = await client_of(flaky, "hole", faults=faults, timeout_s=0.05)
    with pytest.raises(DependencyUnavailableError, match="blackholed"):
        await client.request("GET", "/thing")
    assert sum(flaky.calls.values()) == 0


async def test_trace_context_is_propagated(client_of):
    flaky = Flaky(failures=0)
    client = await client_of(flaky, "trace")
    context = tracing.from_headers("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "r1")
    with tracing.activate(context):
        await client.request("GET", "/thing")
    trace_id, span_id = flaky.traceparents[0].split("-")[1:3]
    assert trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert span_id != "b7ad6b7169203331"  # a new span in the same trace


def test_invalid_traceparent_starts_a_new_trace():
    context = tracing.from_headers("00-00000000000000000000000000000000-b7ad6b7169203331-01", None)
    assert context.trace_id != "0" * 32 and len(context.trace_id) == 32
    assert tracing.from_headers("garbage", "bad id with spaces").request_id != "bad id with spaces"
