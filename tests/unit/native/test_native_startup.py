"""`up` from nothing: a component starts as soon as its own render (and its dependencies) are done,
not after every render; a failed render stops the start with its error."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from testbed.native.component import Component
from testbed.native.errors import StackError
from testbed.native.prepare import Renders
from testbed.native.startup import Starter


class FakeSupervisor:
    """Starts are recorded; a started program runs (no health check in these components)."""

    def __init__(self) -> None:
        self.started: list[str] = []

    def process_info(self) -> dict[str, dict[str, Any]]:
        return {name: {"statename": "RUNNING"} for name in self.started}

    def start(self, name: str) -> None:
        self.started.append(name)


def _starter(tmp_path: Path) -> tuple[Starter, FakeSupervisor, Any]:
    ctx = SimpleNamespace(config_dir=tmp_path / "config", state_dir=tmp_path, ca_cert=None)
    supervisor = FakeSupervisor()
    return Starter(ctx, supervisor, lambda _component: {}), supervisor, ctx  # type: ignore[arg-type]


def test_a_component_starts_while_a_slower_render_still_runs(tmp_path: Path):
    release = threading.Event()

    def slow_render(_ctx: Any) -> None:
        assert release.wait(10)

    def check_and_release() -> None:
        # The quick components were started while the slow render was still blocked.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "after-fast" not in supervisor.started:
            time.sleep(0.01)
        seen.extend(supervisor.started)
        release.set()

    components = [
        Component("slow", ["x"], render=slow_render),
        Component("fast", ["x"], render=lambda _ctx: None),
        Component("plain", ["x"]),
        Component("after-fast", ["x"], depends_on=("fast",)),
        Component("after-slow", ["x"], depends_on=("slow",)),
    ]
    starter, supervisor, ctx = _starter(tmp_path)
    seen: list[str] = []
    renders = Renders(ctx, components, own_each=False)
    watcher = threading.Thread(target=check_and_release)
    watcher.start()
    try:
        starter.start_in_order(components, lambda *_: None, renders)
    finally:
        release.set()
        watcher.join()
        renders.close()
    assert set(seen) == {"fast", "plain", "after-fast"}  # before the slow render was let go
    assert supervisor.started.index("slow") < supervisor.started.index("after-slow")
    assert set(supervisor.started) == {c.name for c in components}


def test_a_failed_render_stops_the_start_with_its_error(tmp_path: Path):
    def broken(_ctx: Any) -> None:
        raise RuntimeError("keystore tool failed")

    components = [
        Component("broken", ["x"], render=broken),
        Component("after", ["x"], depends_on=("broken",)),
    ]
    starter, supervisor, ctx = _starter(tmp_path)
    renders = Renders(ctx, components, own_each=False)
    try:
        with pytest.raises(StackError, match="rendering the config of broken failed: keystore tool failed"):
            starter.start_in_order(components, lambda *_: None, renders)
    finally:
        renders.close()
    assert supervisor.started == []
