"""Session fixtures of the metrics integration tests (helpers live in testbed/metrics/probes.py)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_api_client import PrometheusConnect

from testbed.context import RenderContext
from testbed.metrics.client import alertmanager_client, prometheus_api, reload_running
from testbed.metrics.probes import AlertSink
from testbed.metrics.render import render_native
from testbed.native.control import NativeStack


@pytest.fixture(scope="session", autouse=True)
def current_metrics_config(native_stack: RenderContext) -> None:
    """A stack started before the last change of the rules or policy runs with the current ones."""
    render_native(native_stack)
    reload_running(native_stack)


@pytest.fixture(scope="session")
def prom(native_stack: RenderContext) -> PrometheusConnect:
    return prometheus_api(native_stack)


@pytest.fixture(scope="session")
def sink(native_stack: RenderContext) -> AlertSink:
    return AlertSink(native_stack)


@pytest.fixture(scope="session")
def control(native_stack: RenderContext) -> NativeStack:
    return NativeStack(native_stack)


@pytest.fixture(scope="session")
def alertmanager(native_stack: RenderContext) -> Iterator[httpx.Client]:
    with alertmanager_client(native_stack) as client:
        yield client
