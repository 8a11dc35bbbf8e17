"""What `testbed status` reports per component: supervisord's state and a live health probe."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from testbed.backend import ComponentStatus
from testbed.context import RenderContext
from testbed.native import supervisor as sv
from testbed.native.component import Component
from testbed.native.processes import stack_processes

__all__ = ["ComponentStatus", "collect"]


def collect(
    ctx: RenderContext,
    client: sv.SupervisorClient,
    components: list[Component],
    probe: Callable[[Component], tuple[bool, str]],
    ports_of: Callable[[Component], dict[str, int]],
) -> dict[str, ComponentStatus]:
    """Every component; STALE when supervisord is gone but processes it started still run."""
    supervised = client.is_running()
    info = client.process_info() if supervised else {}
    if not supervised and stack_processes(ctx):
        info = {c.name: {"statename": "STALE"} for c in components}
    probed_states = ("RUNNING", "STALE")
    running = [c for c in components if info.get(c.name, {}).get("statename") in probed_states]
    with ThreadPoolExecutor(max_workers=8) as pool:
        probes = dict(zip([c.name for c in running], pool.map(probe, running), strict=True))
    result = {}
    for component in components:
        process = info.get(component.name, {})
        state = process.get("statename", "STOPPED")
        if component.name in probes:
            health_word = "healthy" if probes[component.name][0] else "unhealthy"
        else:
            health_word = "stopped"
        result[component.name] = ComponentStatus(
            name=component.name,
            state=state,
            health=health_word,
            pid=process.get("pid") or None,
            url=component.url,
            ports=ports_of(component),
        )
    return result
