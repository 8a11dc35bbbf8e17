"""Probes of a live stack for the metrics tests and figures: deterministic shop traffic, the alert
sink's history, fault flags, and waiting for Prometheus alerts to go quiet."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
from prometheus_api_client import PrometheusConnect

from testbed.context import RenderContext


class ShopTraffic:
    """Bounded, deterministic user traffic on every gateway instance (127.0.0.1 only)."""

    def __init__(self, ctx: RenderContext, rate_per_s: float = 8.0) -> None:
        self.urls = [f"http://127.0.0.1:{port}" for port in ctx.ports["gateway"]]
        self.interval_s = 1.0 / rate_per_s
        self.sent = 0
        self.statuses: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _product_id(self, client: httpx.Client) -> str | None:
        for url in self.urls:
            try:
                products = client.get(f"{url}/catalog").json().get("products") or []
            except (httpx.HTTPError, ValueError):
                continue
            if products:
                return str(products[0]["id"])
        return None

    def _run(self) -> None:
        with httpx.Client(timeout=5.0) as client:
            product_id = self._product_id(client)
            while not self._stop.is_set():
                url = self.urls[self.sent % len(self.urls)]
                try:
                    if self.sent % 4 == 3 and product_id:
                        response = client.post(
                            f"{url}/orders", json={"product_id": product_id, "quantity": 1}
                        )
                    else:
                        response = client.get(f"{url}/catalog")
                    self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
                except httpx.HTTPError:
                    self.statuses[0] = self.statuses.get(0, 0) + 1
                self.sent += 1
                self._stop.wait(self.interval_s)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="shop-traffic", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)


@contextmanager
def shop_traffic(ctx: RenderContext, rate_per_s: float = 8.0) -> Iterator[ShopTraffic]:
    traffic = ShopTraffic(ctx, rate_per_s)
    traffic.start()
    try:
        yield traffic
    finally:
        traffic.stop()


class AlertSink:
    def __init__(self, ctx: RenderContext) -> None:
        self.base = f"http://{ctx.address('alert_sink')}"

    def alerts(
        self, name: str | None = None, state: str | None = None, since: datetime | None = None
    ) -> list[dict]:
        params = {k: v for k, v in {"name": name, "state": state}.items() if v}
        if since is not None:
            params["since"] = since.isoformat()
        response = httpx.get(f"{self.base}/alerts", params=params, timeout=10)
        response.raise_for_status()
        return response.json()["alerts"]

    def wait_for(
        self,
        name: str,
        state: str,
        since: datetime,
        timeout_s: float,
        match: Callable[[dict[str, Any]], bool] = lambda _alert: True,
    ) -> tuple[dict[str, Any] | None, float]:
        """The first matching record and the seconds it took (or None and the time waited)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            found = [a for a in self.alerts(name, state, since) if match(a)]
            if found:
                return found[0], time.monotonic() - started
            time.sleep(1)
        return None, time.monotonic() - started


def now() -> datetime:
    return datetime.now(UTC)


def set_faults(ctx: RenderContext, service: str, **spec: Any) -> None:
    token = ctx.secrets.fault_admin_token
    for port in ctx.ports[service]:
        response = httpx.put(
            f"http://127.0.0.1:{port}/admin/faults",
            json=spec,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        response.raise_for_status()


def clear_faults(ctx: RenderContext, service: str) -> None:
    token = ctx.secrets.fault_admin_token
    for port in ctx.ports[service]:
        httpx.delete(
            f"http://127.0.0.1:{port}/admin/faults", headers={"Authorization": f"Bearer {token}"}, timeout=10
        ).raise_for_status()


def wait_quiet(
    prom: PrometheusConnect, alert_names: Iterable[str], timeout_s: float = 300
) -> list[dict[str, str]]:
    """Wait until none of ``alert_names`` is pending or firing in Prometheus (left over from an earlier
    test); returns what is still active after ``timeout_s`` (empty when quiet)."""
    selector = f'ALERTS{{alertname=~"{"|".join(alert_names)}"}}'
    deadline = time.monotonic() + timeout_s
    while True:
        active = [series["metric"] for series in prom.custom_query(selector)]
        if not active or time.monotonic() >= deadline:
            return active
        time.sleep(5)
