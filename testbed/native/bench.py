"""`testbed bench stack`: cold and warm start of the whole native stack to all-healthy, RSS at idle.

Runs on a private stack (own state dir and port offset) so a running stack is not disturbed.
Cold = a fresh state dir with the Elasticsearch archive already cached (PKI, keystore, initdb and
RabbitMQ's first boot included); warm = the same state dir started again after `down`.
"""

from __future__ import annotations

import os
import platform
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil

from testbed import settings
from testbed.context import RenderContext
from testbed.native import control
from testbed.native.control import NativeStack

RESULTS_FILE = settings.REPO_ROOT / "bench" / "RESULTS-native.md"
BENCH_STATE_DIR = Path("/var/tmp/testbed-bench")
BENCH_PORT_OFFSET = 8000
WARM_GOAL_S = 45.0
COLD_GOAL_S = 30.0  # issue 12: fresh state dir (archive cached) to all-healthy
RSS_GOAL_BYTES = 4 * 1024**3


@dataclass
class StackFigures:
    cold_start_s: float = 0.0
    warm_start_s: float = 0.0
    component_ready_s: dict[str, float] = field(default_factory=dict)  # warm start, per component
    cold_component_ready_s: dict[str, float] = field(default_factory=dict)
    load_at_cold: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_at_warm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rss_bytes: int = 0
    pss_bytes: int = 0
    rss_by_component: dict[str, int] = field(default_factory=dict)
    process_count: int = 0
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    components: int = 0
    state_dir: Path = BENCH_STATE_DIR
    port_offset: int = BENCH_PORT_OFFSET

    def markdown(self) -> str:
        gib = 1024**3
        mib = 1024**2
        lines = [
            "# Native stack figures",
            "",
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `testbed bench stack` on {platform.node()} "
            f"({os.cpu_count()} CPU cores, {psutil.virtual_memory().total / gib:.0f} GB RAM), "
            f"{self.components} components. Load average before the run: "
            + ", ".join(f"{x:.1f}" for x in self.load_before)
            + " (the machine is shared: other stacks may run beside it).",
            "",
            "| figure | value | goal |",
            "|---|---|---|",
            f"| cold start to all-healthy (archive cached, fresh state dir) | {self.cold_start_s:.1f} s "
            f"(load {self.load_at_cold[0]:.1f}) | <= {COLD_GOAL_S:.0f} s: "
            f"{'met' if self.cold_start_s <= COLD_GOAL_S else 'MISSED'} |",
            f"| warm start to all-healthy | {self.warm_start_s:.1f} s (load {self.load_at_warm[0]:.1f}) "
            f"| <= {WARM_GOAL_S:.0f} s: {'met' if self.warm_start_s <= WARM_GOAL_S else 'MISSED'} |",
            f"| cold / warm | {self.cold_start_s / self.warm_start_s if self.warm_start_s else 0:.2f} | |",
            f"| RSS of the whole stack at idle (sum over {self.process_count} processes) | "
            f"{self.rss_bytes / gib:.2f} GiB | <= {RSS_GOAL_BYTES / gib:.0f} GB |",
            "| PSS of the whole stack at idle (shared pages counted once) | "
            f"{self.pss_bytes / gib:.2f} GiB | |",
            "",
            "When each component became healthy (seconds after `up` began):",
            "",
            "| component | cold start | warm start | RSS at idle |",
            "|---|---|---|---|",
        ]
        for name, at in sorted(self.component_ready_s.items(), key=lambda item: item[1]):
            cold = self.cold_component_ready_s.get(name)
            lines.append(
                f"| {name} | {f'{cold:.1f} s' if cold is not None else ''} | {at:.1f} s "
                f"| {self.rss_by_component.get(name, 0) / mib:.0f} MiB |"
            )
        where = f"--state-dir {self.state_dir} --port-offset {self.port_offset}"
        lines += ["", f"Reproduce: `testbed setup && testbed bench stack {where}` (a private stack).", ""]
        return "\n".join(lines)


def _timed_up(stack: NativeStack) -> tuple[float, dict[str, float]]:
    started = time.monotonic()
    ready: dict[str, float] = {}

    def on_event(name: str, phase: control.Phase, _detail: str) -> None:
        if phase in ("healthy", "already running"):
            ready[name] = time.monotonic() - started

    stack.up(on_event)
    return time.monotonic() - started, ready


def _memory(stack: NativeStack) -> tuple[int, int, int, dict[str, int]]:
    """(RSS sum, PSS sum, process count, RSS per component) of every process of the stack."""
    supervisor_children = {
        name: info.get("pid") for name, info in stack.client.process_info().items() if info.get("pid")
    }
    owner: dict[int, str] = {}
    for name, pid in supervisor_children.items():
        try:
            root = psutil.Process(pid)
            for proc in [root, *root.children(recursive=True)]:
                owner[proc.pid] = name
        except psutil.Error:
            continue
    rss = pss = 0
    by_component: dict[str, int] = {}
    processes = control.stack_processes(stack.ctx)
    for proc in processes:
        try:
            info = proc.memory_full_info()
        except psutil.Error:
            continue
        rss += info.rss
        pss += getattr(info, "pss", info.rss)
        name = owner.get(proc.pid, "supervisord")
        by_component[name] = by_component.get(name, 0) + info.rss
    return rss, pss, len(processes), by_component


def run(
    progress: Callable[[str], None],
    idle_s: float = 30.0,
    state_dir: Path = BENCH_STATE_DIR,
    port_offset: int = BENCH_PORT_OFFSET,
) -> StackFigures:
    """Measure on a private bench stack (``state_dir`` is wiped first); leaves nothing running."""
    os.environ["TESTBED_STATE_DIR"] = str(state_dir)
    os.environ["TESTBED_PORT_OFFSET"] = str(port_offset)
    figures = StackFigures(load_before=os.getloadavg(), state_dir=state_dir, port_offset=port_offset)
    stale = NativeStack()
    stale.down()
    shutil.rmtree(state_dir, ignore_errors=True)
    try:
        stack = NativeStack(RenderContext.native())
        figures.components = len(stack.components)
        progress("cold start (fresh state dir)...")
        figures.load_at_cold = os.getloadavg()
        figures.cold_start_s, figures.cold_component_ready_s = _timed_up(stack)
        progress(f"cold start: {figures.cold_start_s:.1f} s; stopping")
        stack.down()
        stack = NativeStack()
        progress("warm start...")
        figures.load_at_warm = os.getloadavg()
        figures.warm_start_s, figures.component_ready_s = _timed_up(stack)
        progress(f"warm start: {figures.warm_start_s:.1f} s; idling {idle_s:.0f} s before measuring memory")
        time.sleep(idle_s)
        figures.rss_bytes, figures.pss_bytes, figures.process_count, figures.rss_by_component = _memory(stack)
    finally:
        NativeStack().down()
    return figures


def write_results(figures: StackFigures) -> Path:
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(figures.markdown())
    return RESULTS_FILE
