"""supervisord for the native stack: its config rendered from the stack definition, its XML-RPC API.

supervisord runs as a daemon with its files in ``<state>/supervisor/``; it starts nothing by itself
(``autostart=false``): ``testbed up`` starts components in dependency order, gated on health.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from supervisor.xmlrpc import SupervisorTransport

from testbed.context import RenderContext
from testbed.native.component import Component

# Every process of a stack carries this variable (value: the state dir): `down` and stale-state
# recovery find the stack's processes by it, even those a killed supervisord left behind.
STACK_MARKER_ENV = "TESTBED_STACK_ID"


def supervisor_dir(ctx: RenderContext) -> Path:
    return ctx.state_dir / "supervisor"


def socket_path(ctx: RenderContext) -> Path:
    return supervisor_dir(ctx) / "supervisor.sock"


def pid_path(ctx: RenderContext) -> Path:
    return supervisor_dir(ctx) / "supervisord.pid"


def conf_path(ctx: RenderContext) -> Path:
    return supervisor_dir(ctx) / "supervisord.conf"


def component_log(ctx: RenderContext, name: str) -> Path:
    """stdout+stderr of a component, as supervisord captures it."""
    return ctx.log_dir / name / f"{name}.out.log"


def _escape(value: str) -> str:
    # supervisord interpolates %(...)s in its config: a literal % must be doubled.
    return value.replace("%", "%%")


def _environment_line(env: dict[str, str]) -> str:
    parts = []
    for key, value in sorted(env.items()):
        if '"' in value or "\n" in value:
            raise ValueError(f"environment value of {key} cannot hold a double quote or a newline")
        parts.append(f'{key}="{_escape(value)}"')
    return ",".join(parts)


def _quote_arg(arg: str) -> str:
    # supervisord splits `command` with shlex: quote arguments that need it.
    if arg and all(c.isalnum() or c in "-_./=:@,+{}" for c in arg):
        return _escape(arg)
    return _escape("'" + arg.replace("'", "'\"'\"'") + "'")


def render_conf(ctx: RenderContext, components: Sequence[Component], run_as: str | None) -> str:
    """supervisord.conf for ``components``; ``run_as`` is the user programs run as (None: ourselves)."""
    sup = supervisor_dir(ctx)
    lines = [
        "; Rendered by testbed (testbed/native/supervisor.py): do not edit.",
        "[unix_http_server]",
        f"file={_escape(str(socket_path(ctx)))}",
        "chmod=0700",
        "",
        "[supervisord]",
        f"logfile={_escape(str(sup / 'supervisord.log'))}",
        "logfile_maxbytes=5MB",
        "logfile_backups=2",
        f"pidfile={_escape(str(pid_path(ctx)))}",
        f"childlogdir={_escape(str(ctx.log_dir))}",
        f"directory={_escape(str(ctx.state_dir))}",
        f"identifier=testbed:{_escape(str(ctx.state_dir))}",
        "minfds=16384",  # Elasticsearch wants many; hard limits here may be ~20000
        "minprocs=4096",
        "nodaemon=false",
        "strip_ansi=true",
        f"environment={_environment_line({STACK_MARKER_ENV: str(ctx.state_dir)})}",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{_escape(str(socket_path(ctx)))}",
        "",
    ]
    home = ctx.state_dir / "home"
    for component in components:
        env = {"HOME": str(home), "TMPDIR": str(ctx.state_dir / "tmp"), **component.environment}
        if run_as and component.run_as_stack_user:
            env.setdefault("USER", run_as)
            env.setdefault("LOGNAME", run_as)
        log = component_log(ctx, component.name)
        lines += [
            f"[program:{component.name}]",
            "command=" + " ".join(_quote_arg(arg) for arg in component.command),
            f"directory={_escape(component.directory or str(ctx.state_dir))}",
            f"environment={_environment_line(env)}",
            "autostart=false",
            # A crash stays visible (chaos experiments and health checks see it); `up`/`start` restart.
            "autorestart=false",
            "startsecs=0",  # readiness is the health check's job, not a timer
            "startretries=0",
            f"stopsignal={component.stop_signal}",
            f"stopwaitsecs={component.stop_wait_s}",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={_escape(str(log))}",
            "stdout_logfile_maxbytes=10MB",
            "stdout_logfile_backups=2",
        ]
        if run_as and component.run_as_stack_user:
            lines.append(f"user={run_as}")
        lines.append("")
    return "\n".join(lines)


class SupervisorClient:
    """The XML-RPC API of one stack's supervisord, over its unix socket."""

    def __init__(self, ctx: RenderContext) -> None:
        self.ctx = ctx

    @property
    def rpc(self) -> Any:
        # A fresh connection per call: after a failed request the transport cannot be reused.
        transport = SupervisorTransport(None, None, f"unix://{socket_path(self.ctx)}")
        proxy = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport, allow_none=True)
        return proxy.supervisor

    def is_running(self) -> bool:
        if not socket_path(self.ctx).exists():
            return False
        try:
            return cast(str, self.rpc.getState()["statename"]) == "RUNNING"
        except (OSError, xmlrpc.client.Error):
            return False

    def pid(self) -> int:
        return cast(int, self.rpc.getPID())

    def process_info(self) -> dict[str, dict[str, Any]]:
        return {info["name"]: info for info in self.rpc.getAllProcessInfo()}

    def start(self, name: str) -> None:
        try:
            self.rpc.startProcess(name, False)
        except xmlrpc.client.Fault as fault:
            if "ALREADY_STARTED" not in fault.faultString:
                raise

    def stop(self, name: str) -> None:
        try:
            self.rpc.stopProcess(name, True)
        except xmlrpc.client.Fault as fault:
            if "NOT_RUNNING" not in fault.faultString:
                raise

    def signal(self, name: str, signal_name: str) -> None:
        self.rpc.signalProcess(name, signal_name)

    def stop_all(self) -> None:
        self.rpc.stopAllProcesses(True)

    def reload_programs(self) -> None:
        """Apply a changed supervisord.conf: add new programs, drop removed ones, refresh changed ones."""
        added, changed, removed = self.rpc.reloadConfig()[0]
        for name in removed + changed:
            self.stop(name)
            self.rpc.removeProcessGroup(name)
        for name in added + changed:
            self.rpc.addProcessGroup(name)

    def shutdown(self) -> None:
        self.rpc.shutdown()


def launch_supervisord(ctx: RenderContext) -> None:
    """Start supervisord as a daemon and wait until its API answers."""
    env = {**os.environ, STACK_MARKER_ENV: str(ctx.state_dir)}
    result = subprocess.run(
        [sys.executable, "-m", "supervisor.supervisord", "-c", str(conf_path(ctx))],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"supervisord did not start: {(result.stdout + result.stderr).strip()[-400:]}")
    client = SupervisorClient(ctx)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if client.is_running():
            return
        time.sleep(0.1)
    raise RuntimeError(
        f"supervisord did not answer on {socket_path(ctx)}; see {supervisor_dir(ctx)}/supervisord.log"
    )
