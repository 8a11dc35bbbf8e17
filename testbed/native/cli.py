"""The native stack's commands: setup, up, down, status, env, logs, start/stop/kill/restart, demo."""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from testbed import backend as backends
from testbed.backend import NOT_SERVING, Backend, ComponentStatus
from testbed.cli_helpers import bench_group, fail
from testbed.native import control, setup
from testbed.native.backend import NativeBackend
from testbed.native.control import NativeStack, Phase, StackError

console = Console(stderr=True)
out = Console()

PHASE_STYLE: dict[str, str] = {
    "waiting": "dim",
    "starting": "yellow",
    "healthy": "green",
    "already running": "green",
    "failed": "bold red",
}


def _stack() -> NativeStack:
    try:
        return NativeStack()
    except (StackError, ValueError, KeyError) as exc:
        raise fail(str(exc)) from None


class UpProgress:
    """A live table of every component's phase while `up` runs."""

    def __init__(self, names: list[str]) -> None:
        self.rows: dict[str, tuple[Phase, str, float | None]] = {n: ("waiting", "", None) for n in names}
        self.started = time.monotonic()

    def __call__(self, name: str, phase: Phase, detail: str) -> None:
        if name not in self.rows:
            console.print(f"[dim]{name}: {detail}[/]")
            return
        took = time.monotonic() - self.started if phase in ("healthy", "failed") else None
        self.rows[name] = (phase, detail, took)

    def table(self) -> Table:
        table = Table(title=f"testbed up ({time.monotonic() - self.started:.0f} s)", title_justify="left")
        table.add_column("component")
        table.add_column("phase")
        table.add_column("at", justify="right")
        table.add_column("detail", overflow="fold", max_width=60)
        for name, (phase, detail, took) in self.rows.items():
            style = PHASE_STYLE.get(phase, "")
            table.add_row(name, f"[{style}]{phase}[/]", f"{took:.1f} s" if took is not None else "", detail)
        return table


def run_up(backend: Backend, names: list[str] | None = None) -> None:
    try:
        progress = UpProgress(backend.plan(names or []))
    except StackError as exc:
        raise fail(str(exc)) from None
    try:
        if progress.rows:
            with Live(progress.table(), console=console, refresh_per_second=4, transient=False) as live:

                def on_event(name: str, phase: Phase, detail: str) -> None:
                    progress(name, phase, detail)
                    live.update(progress.table())

                backend.up(names or [], on_event)
                live.update(progress.table())
        else:  # a backend without progress events: its own output is all there is
            backend.up(names or [])
    except KeyboardInterrupt:
        raise fail(
            "interrupted: the stack was stopped cleanly (data kept); run `testbed up` again", code=130
        ) from None
    except StackError as exc:
        raise fail(f"{exc}{backend.up_failure_note}", exc.detail) from None
    console.print(
        f"[green]stack healthy[/] in {time.monotonic() - progress.started:.1f} s "
        f'(state: {backend.context().state_dir}); `eval "$(testbed env)"` for your tools'
    )


def status_table(statuses: dict[str, ComponentStatus]) -> Table:
    table = Table(title="testbed status", title_justify="left")
    for column in ("component", "state", "health", "pid", "url"):
        table.add_column(column)
    for item in statuses.values():
        style = {"healthy": "green", "unhealthy": "red"}.get(item.health, "dim")
        table.add_row(
            item.name, item.state, f"[{style}]{item.health}[/]", str(item.pid or ""), item.url or ""
        )
    return table


def setup_command() -> None:
    """Install what the native stack needs (Debian packages, testbed user, JDK check, Elasticsearch)."""
    try:
        with console.status("set-up") as spinner:

            def progress(message: str) -> None:
                spinner.update(message)
                console.print(f"[dim]·[/] {message}")

            setup.run_setup(progress)
    except setup.SetupError as exc:
        raise fail(str(exc)) from None
    console.print("[green]set-up complete[/]")


BackendOption = Annotated[str, typer.Option("--backend", help="native (supervisord) or compose (Docker).")]


def _backend(name: str) -> Backend:
    try:
        return backends.named(name)
    except ValueError as exc:
        raise fail(str(exc), code=2) from None


def up_command(
    names: Annotated[
        list[str] | None, typer.Argument(help="Only these components (and what they need); default: all.")
    ] = None,
    backend: BackendOption = "native",
) -> None:
    """Bring the stack up, in dependency order, each component gated on its health check."""
    run_up(_backend(backend), names)


def down_command(backend: BackendOption = "native") -> None:
    """Stop every component and supervisord; verify no process of the stack is left."""
    try:
        _backend(backend).down()
    except StackError as exc:
        raise fail(str(exc)) from None
    console.print("[green]stack down[/]: no process left")


def status_command(
    as_json: Annotated[bool, typer.Option("--json", help="Stable JSON for scripts.")] = False,
    backend: BackendOption = "native",
) -> None:
    """State, health, pid and URL of every component."""
    try:
        statuses = _backend(backend).status()
    except StackError as exc:
        raise fail(str(exc)) from None
    if as_json:
        payload = {"components": {name: item.as_json() for name, item in statuses.items()}}
        out.print_json(json.dumps(payload))
        return
    out.print(status_table(statuses))
    if any(item.state == "STALE" for item in statuses.values()):
        raise fail("supervisord is gone but stack processes still run: `testbed up` recovers them")
    if any(item.health in NOT_SERVING for item in statuses.values()):
        raise typer.Exit(3)


def env_command() -> None:
    """Shell exports for your own tools: eval "$(testbed env)"."""
    for key, value in _stack().environment().items():
        sys.stdout.write(f"export {key}={shlex.quote(value)}\n")


def _one(action: str, name: str, backend: str = "native") -> None:
    chosen = _backend(backend)
    try:
        getattr(chosen, action)(name)
    except StackError as exc:
        raise fail(str(exc), exc.detail) from None
    console.print(f"{name}: {action} done")


ComponentName = Annotated[str, typer.Argument(help="Component name, as in `testbed status`.")]


def start_command(name: ComponentName, backend: BackendOption = "native") -> None:
    """Start one component and wait until it is healthy."""
    _one("start", name, backend)


def stop_command(name: ComponentName, backend: BackendOption = "native") -> None:
    """Stop one component (SIGTERM, then SIGKILL after its grace period)."""
    _one("stop", name, backend)


def kill_command(name: ComponentName, backend: BackendOption = "native") -> None:
    """SIGKILL one component's processes, as a crash would (for chaos experiments)."""
    _one("kill", name, backend)


def restart_command(name: ComponentName) -> None:
    """Stop then start one component, waiting for it to be healthy."""
    stack = _stack()
    try:
        stack.restart(name)
    except StackError as exc:
        raise fail(str(exc), exc.detail) from None
    console.print(f"{name}: restart done")


def logs_command(
    name: ComponentName,
    lines: Annotated[int, typer.Option("-n", "--lines", help="How many last lines.")] = 50,
    follow: Annotated[bool, typer.Option("-f", "--follow", help="Keep printing new lines.")] = False,
) -> None:
    """Print a component's output (stdout and stderr as supervisord captured them)."""
    stack = _stack()
    try:
        path = stack.log_path(name)
    except StackError as exc:
        raise fail(str(exc)) from None
    if not follow:
        if not path.exists():
            raise fail(f"no log yet for {name} ({path}): has it been started?")
        for line in control.tail(path, lines):
            sys.stdout.write(line + "\n")
        return
    try:
        for line in stack.follow_log(name, lines):
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
    except KeyboardInterrupt:
        return


def smoke_check(stack: NativeStack) -> bool:
    """Every component healthy, and each infrastructure piece serving a real client (the demo's proof)."""
    from testbed.native import smoke

    statuses = stack.status()
    out.print(status_table(statuses))
    results = smoke.run_all(stack.ctx)
    table = Table(title="smoke check", title_justify="left")
    for column in ("component", "result", "detail"):
        table.add_column(column)
    for result in results:
        table.add_row(result.component, "[green]ok[/]" if result.ok else "[bold red]FAILED[/]", result.detail)
    out.print(table)
    return all(item.health == "healthy" for item in statuses.values()) and all(r.ok for r in results)


def demo_command() -> None:
    """Bring the stack up, smoke-check each component, run the smoke and service-killed scenarios."""
    stack = _stack()
    run_up(NativeBackend(stack))
    if not smoke_check(stack):
        raise fail("the smoke check failed: see `testbed logs <component>`")
    console.print("[green]smoke check passed[/]: every component healthy and serving")
    # The main job: a smoke scenario and one chaos scenario, with their reports (testbed/scenario).
    from testbed.scenario.cli import run_demo_scenarios

    raise typer.Exit(run_demo_scenarios())


def bench_stack_command(
    idle: Annotated[float, typer.Option("--idle", help="Seconds of idle before measuring memory.")] = 30.0,
    state_dir: Annotated[
        Path | None,
        typer.Option("--state-dir", help="Private state dir (wiped first: never a live stack's)."),
    ] = None,
    port_offset: Annotated[
        int | None, typer.Option("--port-offset", help="Port offset of the bench stack.")
    ] = None,
) -> None:
    """Cold/warm start to all-healthy and RSS at idle (private stack); writes bench/RESULTS-native.md."""
    from testbed.native import bench

    try:
        figures = bench.run(
            lambda message: console.print(f"[dim]·[/] {message}"),
            idle_s=idle,
            state_dir=state_dir or bench.BENCH_STATE_DIR,
            port_offset=bench.BENCH_PORT_OFFSET if port_offset is None else port_offset,
        )
    except StackError as exc:
        raise fail(str(exc), exc.detail) from None
    out.print(figures.markdown())
    console.print(f"written to {bench.write_results(figures)}")


def register(app: typer.Typer) -> None:
    """Add the native stack's commands to the `testbed` app."""
    app.command("setup")(setup_command)
    app.command("up")(up_command)
    app.command("down")(down_command)
    app.command("status")(status_command)
    app.command("env")(env_command)
    app.command("start")(start_command)
    app.command("stop")(stop_command)
    app.command("kill")(kill_command)
    app.command("restart")(restart_command)
    app.command("logs")(logs_command)
    app.command("demo")(demo_command)
    bench_group(app).command("stack")(bench_stack_command)
