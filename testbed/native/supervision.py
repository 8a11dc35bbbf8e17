"""supervisord's own lifecycle for one stack: launch it, reload it, shut it down, clean up after it.

"Cleaned up" means no process carrying the stack's marker is left, even after a kill -9 of supervisord.
"""

from __future__ import annotations

import contextlib

import psutil

from testbed.context import RenderContext
from testbed.native import supervisor as sv
from testbed.native.errors import EventCallback, StackError, no_event
from testbed.native.processes import stack_processes, terminate


def recover_stale(ctx: RenderContext, on_event: EventCallback = no_event) -> None:
    """After a kill -9 of supervisord: stop what it left running, drop its socket and pid file."""
    leftovers = stack_processes(ctx)
    if leftovers:
        on_event("supervisord", "starting", f"stopping {len(leftovers)} processes left by a dead supervisord")
        alive = terminate(leftovers)
        if alive:
            pids = ", ".join(str(p.pid) for p in alive)
            raise StackError(f"processes of a previous run survive SIGKILL ({pids}): stop them and retry")
    sv.socket_path(ctx).unlink(missing_ok=True)
    sv.pid_path(ctx).unlink(missing_ok=True)


def ensure_running(
    ctx: RenderContext, client: sv.SupervisorClient, on_event: EventCallback = no_event
) -> None:
    """A running supervisord reloads the rendered programs; a dead one is cleaned up and launched."""
    if client.is_running():
        client.reload_programs()
        return
    recover_stale(ctx, on_event)
    try:
        sv.launch_supervisord(ctx)
    except RuntimeError as exc:
        raise StackError(str(exc)) from None


def require_running(client: sv.SupervisorClient) -> None:
    if not client.is_running():
        raise StackError("the stack is not up: run `testbed up`")


def shut_down(ctx: RenderContext, client: sv.SupervisorClient) -> None:
    """Stop every program and supervisord; then make sure no process of the stack is left."""
    if client.is_running():
        supervisord_pid = client.pid()
        with contextlib.suppress(Exception):
            client.stop_all()
        with contextlib.suppress(Exception):
            client.shutdown()
        with contextlib.suppress(psutil.Error):
            psutil.Process(supervisord_pid).wait(timeout=30)
    alive = terminate(stack_processes(ctx))
    if alive:
        pids = ", ".join(f"{p.pid}" for p in alive)
        raise StackError(f"processes of the stack survive SIGKILL ({pids}): check them with ps")
    sv.socket_path(ctx).unlink(missing_ok=True)
    sv.pid_path(ctx).unlink(missing_ok=True)
