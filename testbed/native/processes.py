"""The stack's operating-system processes and ports, seen without supervisord (psutil, sockets).

Used to tell who holds a port, to find what a dead supervisord left running, and to read log tails.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

import psutil

from testbed.context import RenderContext
from testbed.native import supervisor as sv
from testbed.native.errors import StackError

LOG_TAIL_LINES = 15


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> list[str]:
    if not path.exists():
        return []
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - 64 * 1024))
        text = fh.read().decode(errors="replace")
    return text.splitlines()[-lines:]


def port_holder(port: int) -> str | None:
    """Who listens on ``port`` (any address), as 'pid N (name)', or None when it is free.

    A bind on the loopback decides, in microseconds; only a taken port pays for the scan of every
    socket of the machine that names its holder (~50 ms idle, much more on a loaded machine, and
    `up` asked once per port of every component it launched).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            pass
        else:
            return None
    try:
        connections = psutil.net_connections(kind="inet")
    except psutil.AccessDenied:
        connections = []
    for conn in connections:
        if conn.laddr and conn.laddr.port == port and conn.status in (psutil.CONN_LISTEN, psutil.CONN_NONE):
            if conn.pid is None:
                return "another process (not visible to this user)"
            try:
                proc = psutil.Process(conn.pid)
                return f"pid {conn.pid} ({proc.name()}: {' '.join(proc.cmdline())[:80]})"
            except psutil.Error:
                return f"pid {conn.pid}"
    return "another process"


def check_ports_free(component_name: str, ports: dict[str, int]) -> None:
    """Fail naming the holder and the way out when one of a component's ports is taken."""
    for port_name, port in ports.items():
        holder = port_holder(port)
        if holder:
            raise StackError(
                f"port {port} ({port_name}, for {component_name}) is already in use by {holder}: "
                f"stop it, or move the stack with TESTBED_PORT_{port_name.upper()} or TESTBED_PORT_OFFSET"
            )


def stack_processes(ctx: RenderContext) -> list[psutil.Process]:
    """Every live process carrying this stack's marker (supervisord and all it started)."""
    found = []
    me = os.getpid()
    for proc in psutil.process_iter(["pid"]):
        if proc.pid == me:
            continue
        try:
            if (
                proc.environ().get(sv.STACK_MARKER_ENV) == str(ctx.state_dir)
                and proc.status() != psutil.STATUS_ZOMBIE
            ):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def terminate(processes: list[psutil.Process], grace_s: float = 15.0) -> list[psutil.Process]:
    """SIGTERM, then SIGKILL after ``grace_s``; returns the processes that survived both."""
    for proc in processes:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _gone, alive = psutil.wait_procs(processes, timeout=grace_s)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    _gone, alive = psutil.wait_procs(alive, timeout=5)
    return alive
