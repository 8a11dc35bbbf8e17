"""Helpers of the services' integration tests: talk to the live services of the native stack."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from testbed.context import RenderContext

FINAL_STATES = frozenset({"paid", "payment_failed"})


def url(ctx: RenderContext, service: str, instance: int = 0) -> str:
    return f"http://{ctx.address(service, instance)}"


def place_order(
    ctx: RenderContext,
    product_id: str = "mug",
    quantity: int = 1,
    instance: int = 0,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    answer = httpx.post(
        f"{url(ctx, 'gateway', instance)}/orders",
        timeout=10,
        json={"product_id": product_id, "quantity": quantity, **extra},
        headers=headers,
    )
    assert answer.status_code == 202, answer.text
    return answer.json()


def order(ctx: RenderContext, order_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{url(ctx, 'gateway')}/orders/{order_id}", timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def wait_for[T](probe: Callable[[], T | None], timeout_s: float, what: str, interval_s: float = 0.2) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)


def wait_final(ctx: RenderContext, order_id: str, timeout_s: float = 20) -> dict[str, Any]:
    def final() -> dict[str, Any] | None:
        current = order(ctx, order_id)
        return current if current["status"] in FINAL_STATES else None

    return wait_for(final, timeout_s, f"order {order_id} to be settled")


def metric(ctx: RenderContext, service: str, name: str, labels: dict[str, str] | None = None) -> float:
    """Sum of the samples of ``name`` on the service's first instance whose labels include ``labels``."""
    text = httpx.get(f"{url(ctx, service)}/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        series, value = line.rsplit(" ", 1)
        if all(f'{key}="{val}"' in series for key, val in (labels or {}).items()):
            total += float(value)
    return total


def log_lines(ctx: RenderContext, needle: str) -> list[dict[str, Any]]:
    """Every service log line (all instances) containing ``needle``, parsed."""
    found = []
    for path in sorted(Path(ctx.services_log_dir).glob("*.log")):
        with path.open(encoding="utf-8") as lines:
            found += [json.loads(line) for line in lines if needle in line]
    return found
