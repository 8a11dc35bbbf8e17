"""Drive the native stack: up, down, status and per-component control.

The Python API behind the ``testbed`` commands, for chaos actions and tests as well::

    from testbed.native import control
    control.up(); control.kill("rabbitmq"); control.start("rabbitmq"); control.down()

Failures raise ``StackError`` with one line naming the fix (and, for a component that did not get
healthy, its last log lines in ``detail``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import pwd
import signal
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import psutil

from testbed.context import RenderContext
from testbed.native import builds, configs, health, pki, setup
from testbed.native import stack as stack_definition
from testbed.native import supervisor as sv
from testbed.native.component import Component

Phase = Literal["waiting", "starting", "healthy", "failed", "already running"]
EventCallback = Callable[[str, Phase, str], None]
POLL_INTERVAL_S = 0.5
# supervisord process states meaning "not running and not going to be".
DEAD_STATES = {"STOPPED", "EXITED", "FATAL", "BACKOFF", "UNKNOWN"}
LOG_TAIL_LINES = 15


CREDENTIALS_GRACE_S = 30.0


@dataclass
class _Startup:
    """A component being started: since when, and since when it has refused our credentials."""

    since: float
    refused_since: float | None = None


class StackError(RuntimeError):
    """One clear line naming the fix; ``detail`` may hold log lines worth showing."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    state: str  # supervisord's state name (RUNNING, STOPPED, EXITED, FATAL...), STOPPED when it is down
    health: str  # healthy | unhealthy | stopped
    pid: int | None
    url: str | None
    ports: dict[str, int]

    def as_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "health": self.health,
            "pid": self.pid,
            "url": self.url,
            "ports": self.ports,
        }


def _no_event(_name: str, _phase: Phase, _detail: str) -> None:
    pass


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
    """Who listens on ``port`` (any address), as 'pid N (name)', or None when it is free."""
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
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return "another process"
    return None


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


def _terminate(processes: list[psutil.Process], grace_s: float = 15.0) -> list[psutil.Process]:
    for proc in processes:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _gone, alive = psutil.wait_procs(processes, timeout=grace_s)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    _gone, alive = psutil.wait_procs(alive, timeout=5)
    return alive


class NativeStack:
    """One stack: its context (state dir, ports, secrets), its components and its supervisord."""

    def __init__(self, ctx: RenderContext | None = None, components: list[Component] | None = None) -> None:
        self.ctx = ctx or RenderContext.native()
        self.components = components if components is not None else stack_definition.components(self.ctx)
        self.by_name = {c.name: c for c in self.components}
        self.client = sv.SupervisorClient(self.ctx)
        self._lock_depth = 0
        self._check_dependencies()

    @contextlib.contextmanager
    def exclusive(self, on_event: EventCallback = _no_event) -> Iterator[None]:
        """One `up`/`down` at a time per stack (two test sessions, a person and a test...)."""
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        lock_dir = sv.supervisor_dir(self.ctx)
        lock_dir.mkdir(parents=True, exist_ok=True)
        with (lock_dir / "lock").open("w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                on_event("supervisord", "waiting", "another up/down of this stack is running")
                fcntl.flock(handle, fcntl.LOCK_EX)
            self._lock_depth = 1
            try:
                yield
            finally:
                self._lock_depth = 0
                fcntl.flock(handle, fcntl.LOCK_UN)

    # --- definition ---------------------------------------------------------------------------

    def _check_dependencies(self) -> None:
        for component in self.components:
            for dependency in component.depends_on:
                if dependency not in self.by_name:
                    raise StackError(
                        f"{component.name} depends on unknown component {dependency!r}: fix stack.py"
                    )
        seen: set[str] = set()
        remaining = list(self.components)
        while remaining:
            ready = [c for c in remaining if set(c.depends_on) <= seen]
            if not ready:
                names = ", ".join(c.name for c in remaining)
                raise StackError(f"dependency cycle among {names}: fix depends_on in stack.py")
            seen.update(c.name for c in ready)
            remaining = [c for c in remaining if c.name not in seen]

    def component(self, name: str) -> Component:
        try:
            return self.by_name[name]
        except KeyError:
            known = ", ".join(sorted(self.by_name))
            raise StackError(f"no component named {name!r}: pick one of {known}") from None

    def ports_of(self, component: Component) -> dict[str, int]:
        return {name: self.ctx.port(name, component.port_instance) for name in component.port_names}

    # --- preparing ----------------------------------------------------------------------------

    def check_installed(self) -> None:
        """Fail with the fix when `testbed setup` has not been run (or did not finish)."""
        if not (setup.elasticsearch_home() / ".testbed-sha256").exists():
            raise StackError(
                f"Elasticsearch is not installed in {setup.elasticsearch_home()}: run `testbed setup`"
            )
        try:
            setup.java_home()
        except setup.SetupError as exc:
            raise StackError(str(exc)) from None
        if setup.is_root():
            try:
                pwd.getpwnam(setup.STACK_USER)
            except KeyError:
                raise StackError(f"no user {setup.STACK_USER!r}: run `testbed setup`") from None
            if not setup.python_reachable():
                raise StackError(f"the {setup.STACK_USER} user cannot reach this Python: run `testbed setup`")
        for component in self.components:
            executable = component.command[0]
            if executable.startswith("/") and not os.access(executable, os.X_OK):
                raise StackError(f"{executable} (for {component.name}) is missing: run `testbed setup`")

    def _chown_state(self) -> None:
        """The stack user owns the state dir, except what must stay root's (supervisord, the CA key)."""
        keep = {sv.supervisor_dir(self.ctx), self.ctx.pki_dir / "ca.key", self.ctx.state_dir / "secrets.json"}
        if setup.stack_user() is None:
            return
        entry = pwd.getpwnam(setup.STACK_USER)
        os.chown(self.ctx.state_dir, entry.pw_uid, entry.pw_gid)
        for root, dirs, files in os.walk(self.ctx.state_dir):
            dirs[:] = [d for d in dirs if Path(root) / d not in keep]
            for name in dirs + files:
                path = Path(root) / name
                if path in keep:
                    continue
                stat = path.lstat()
                if stat.st_uid != entry.pw_uid or stat.st_gid != entry.pw_gid:
                    os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)

    def config_fingerprint(self, name: str) -> str:
        """Digest of the files under ``<config>/<name>``: tells whether a render changed them."""
        digest = hashlib.sha256()
        directory = self.ctx.config_dir / name
        if directory.is_dir():
            for path in sorted(directory.rglob("*")):
                if path.is_file():
                    digest.update(str(path.relative_to(directory)).encode() + b"\0" + path.read_bytes())
        return digest.hexdigest()

    def _render(self, component: Component) -> tuple[str, bool]:
        """Render one component's config: (its name, whether its rendered files changed)."""
        assert component.render is not None
        before = self.config_fingerprint(component.name)
        try:
            component.render(self.ctx)
        except Exception as exc:
            raise StackError(f"rendering the config of {component.name} failed: {exc}") from exc
        return component.name, self.config_fingerprint(component.name) != before

    def prepare(self) -> set[str]:
        """Directories, PKI, every component's config and supervisord.conf (idempotent).

        Returns the components whose rendered config files changed (`up` restarts them if running).
        """
        self.check_installed()
        ctx = self.ctx
        for directory in (
            ctx.config_dir,
            ctx.data_dir,
            ctx.log_dir,
            ctx.services_log_dir,
            ctx.snapshot_dir,
            ctx.state_dir / "home",
            ctx.state_dir / "tmp",
            ctx.state_dir / "run",
        ):
            directory.mkdir(parents=True, exist_ok=True)
        for component in self.components:
            (ctx.log_dir / component.name).mkdir(parents=True, exist_ok=True)
        sv.supervisor_dir(ctx).mkdir(parents=True, exist_ok=True)
        sv.supervisor_dir(ctx).chmod(0o700)
        pki.ensure_pki(ctx.pki_dir)
        configs.render_client_http_configs(ctx)
        # Renders are independent of each other and some are slow on a fresh state dir (Elasticsearch's
        # keystore tool is a JVM, initdb): run them side by side, so the first start waits for the
        # slowest one only.
        with ThreadPoolExecutor(max_workers=8) as pool:
            outcomes = list(pool.map(self._render, [c for c in self.components if c.render is not None]))
        changed = {name for name, was_changed in outcomes if was_changed}
        conf = sv.render_conf(ctx, self.components, setup.stack_user())
        sv.conf_path(ctx).write_text(conf)
        sv.conf_path(ctx).chmod(0o600)
        self._chown_state()
        return changed

    # --- supervisord --------------------------------------------------------------------------

    def recover_stale(self, on_event: EventCallback = _no_event) -> None:
        """After a kill -9 of supervisord: stop what it left running, drop its socket and pid file."""
        leftovers = stack_processes(self.ctx)
        if leftovers:
            on_event(
                "supervisord", "starting", f"stopping {len(leftovers)} processes left by a dead supervisord"
            )
            alive = _terminate(leftovers)
            if alive:
                pids = ", ".join(str(p.pid) for p in alive)
                raise StackError(f"processes of a previous run survive SIGKILL ({pids}): stop them and retry")
        sv.socket_path(self.ctx).unlink(missing_ok=True)
        sv.pid_path(self.ctx).unlink(missing_ok=True)

    def ensure_supervisord(self, on_event: EventCallback = _no_event) -> None:
        if self.client.is_running():
            self.client.reload_programs()
            return
        self.recover_stale(on_event)
        try:
            sv.launch_supervisord(self.ctx)
        except RuntimeError as exc:
            raise StackError(str(exc)) from None

    def require_supervisord(self) -> None:
        if not self.client.is_running():
            raise StackError("the stack is not up: run `testbed up`")

    # --- up -----------------------------------------------------------------------------------

    def _check_ports_free(self, component: Component) -> None:
        for port_name, port in self.ports_of(component).items():
            holder = port_holder(port)
            if holder:
                raise StackError(
                    f"port {port} ({port_name}, for {component.name}) is already in use by {holder}: "
                    f"stop it, or move the stack with TESTBED_PORT_{port_name.upper()} or TESTBED_PORT_OFFSET"
                )

    def _probe(self, component: Component) -> tuple[bool, str]:
        if component.health is None:
            return True, "no health check"
        return health.probe(component.health, self.ctx.ca_cert)

    def _failure(self, component: Component, reason: str) -> StackError:
        lines = tail(sv.component_log(self.ctx, component.name))
        log = sv.component_log(self.ctx, component.name)
        return StackError(f"{component.name} {reason}; its log: {log}", detail="\n".join(lines))

    def up(self, on_event: EventCallback = _no_event, names: list[str] | None = None) -> None:
        """Start every component (or ``names`` and what they need) in dependency order, gated on health.

        Idempotent: healthy components are left alone. On a failure or Ctrl-C the stack is stopped.
        """
        with self.exclusive(on_event):
            changed = self.prepare()  # a failure here has started nothing: a running stack is left alone
            try:
                self.ensure_supervisord(on_event)
                self._restart_changed(changed, names, on_event)
                self._start_in_order(on_event, self.closure(names) if names else None)
            except BaseException:
                with contextlib.suppress(Exception):
                    self.down()
                raise

    def _restart_changed(self, changed: set[str], names: list[str] | None, on_event: EventCallback) -> None:
        """A running component whose config files this render changed is stopped, so `up` starts it anew."""
        wanted = self.closure(names) if names else set(self.by_name)
        info = self.client.process_info()
        for name in sorted(changed & wanted):
            if info.get(name, {}).get("statename") == "RUNNING":
                on_event(name, "starting", "config changed: restarting")
                self.client.stop(name)

    def closure(self, names: list[str]) -> set[str]:
        wanted: set[str] = set()
        todo = [self.component(n).name for n in names]
        while todo:
            name = todo.pop()
            if name not in wanted:
                wanted.add(name)
                todo.extend(self.by_name[name].depends_on)
        return wanted

    def _start_in_order(self, on_event: EventCallback, only: set[str] | None) -> None:
        targets = [c for c in self.components if only is None or c.name in only]
        with ThreadPoolExecutor(max_workers=8) as pool:
            healthy = self._already_healthy(targets, pool, on_event)
            pending = [c for c in targets if c.name not in healthy]
            for component in pending:
                on_event(component.name, "waiting", ", ".join(component.depends_on))
            starting: dict[str, _Startup] = {}
            while pending or starting:
                for component in [c for c in pending if set(c.depends_on) <= healthy]:
                    pending.remove(component)
                    self._launch(component)
                    starting[component.name] = _Startup(since=time.monotonic())
                    on_event(component.name, "starting", "")
                if pending and not starting:
                    names = ", ".join(c.name for c in pending)
                    raise StackError(f"cannot start {names}: a dependency is not part of this start")
                batch = [self.by_name[name] for name in starting]
                self._fail_if_exited(batch, on_event)
                for component, (ok, seen) in zip(batch, pool.map(self._probe, batch), strict=True):
                    if ok:
                        del starting[component.name]
                        self._run_post_start(component, on_event)
                        healthy.add(component.name)
                        on_event(component.name, "healthy", "")
                    else:
                        self._fail_if_hopeless(component, starting[component.name], seen, on_event)
                        on_event(component.name, "starting", seen)
                if starting:
                    time.sleep(POLL_INTERVAL_S)

    def _already_healthy(
        self, targets: list[Component], pool: ThreadPoolExecutor, on_event: EventCallback
    ) -> set[str]:
        info = self.client.process_info()
        running = [c for c in targets if info.get(c.name, {}).get("statename") == "RUNNING"]
        healthy = set()
        for component, (ok, _seen) in zip(running, pool.map(self._probe, running), strict=True):
            if ok:
                healthy.add(component.name)
                on_event(component.name, "already running", "")
        return healthy

    def _launch(self, component: Component) -> None:
        """Start it unless supervisord already runs it (an earlier, interrupted `up`)."""
        if self.client.process_info().get(component.name, {}).get("statename") != "RUNNING":
            self._check_ports_free(component)
            self.client.start(component.name)

    def _fail_if_exited(self, components: list[Component], on_event: EventCallback) -> None:
        info = self.client.process_info()
        for component in components:
            state = info.get(component.name, {}).get("statename", "UNKNOWN")
            if state in DEAD_STATES:
                on_event(component.name, "failed", state)
                raise self._failure(component, f"exited at start ({state})")

    def _fail_if_hopeless(
        self, component: Component, startup: _Startup, seen: str, on_event: EventCallback
    ) -> None:
        now = time.monotonic()
        # A wrong password never heals: fail fast rather than at the timeout.
        if seen == "HTTP 401":
            startup.refused_since = startup.refused_since or now
        else:
            startup.refused_since = None
        if startup.refused_since is not None and now - startup.refused_since > CREDENTIALS_GRACE_S:
            on_event(component.name, "failed", seen)
            raise self._failure(
                component,
                f"refuses the stack's credentials (HTTP 401 for {CREDENTIALS_GRACE_S:.0f} s): secrets.json "
                "no longer matches the password it keeps (Elasticsearch: bootstrap.password in its "
                "keystore): restore secrets.json, or delete that keystore to use the new one",
            )
        timeout = component.health.timeout_s if component.health else 60.0
        if now - startup.since > timeout:
            on_event(component.name, "failed", seen)
            raise self._failure(component, f"not healthy within {timeout:.0f} s (last probe: {seen})")

    def _run_post_start(self, component: Component, on_event: EventCallback) -> None:
        if component.post_start is None:
            return
        on_event(component.name, "starting", "post-start")
        try:
            component.post_start(self.ctx)
        except Exception as exc:
            on_event(component.name, "failed", "post-start")
            raise self._failure(component, f"post-start hook failed: {exc}") from exc

    # --- down ---------------------------------------------------------------------------------

    def down(self) -> None:
        """Stop every component and supervisord; then make sure no process of the stack is left."""
        with self.exclusive():
            self._down()

    def _down(self) -> None:
        if self.client.is_running():
            supervisord_pid = self.client.pid()
            with contextlib.suppress(Exception):
                self.client.stop_all()
            with contextlib.suppress(Exception):
                self.client.shutdown()
            with contextlib.suppress(psutil.Error):
                psutil.Process(supervisord_pid).wait(timeout=30)
        alive = _terminate(stack_processes(self.ctx))
        if alive:
            pids = ", ".join(f"{p.pid}" for p in alive)
            raise StackError(f"processes of the stack survive SIGKILL ({pids}): check them with ps")
        sv.socket_path(self.ctx).unlink(missing_ok=True)
        sv.pid_path(self.ctx).unlink(missing_ok=True)

    # --- status and one component -------------------------------------------------------------

    def status(self) -> dict[str, ComponentStatus]:
        """Every component; STALE when supervisord is gone but processes it started still run."""
        supervised = self.client.is_running()
        info = self.client.process_info() if supervised else {}
        if not supervised and stack_processes(self.ctx):
            info = {c.name: {"statename": "STALE"} for c in self.components}
        probed_states = ("RUNNING", "STALE")
        running = [c for c in self.components if info.get(c.name, {}).get("statename") in probed_states]
        with ThreadPoolExecutor(max_workers=8) as pool:
            probes = dict(zip([c.name for c in running], pool.map(self._probe, running), strict=True))
        result = {}
        for component in self.components:
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
                ports=self.ports_of(component),
            )
        return result

    def wait_healthy(self, name: str) -> None:
        component = self.component(name)
        startup = _Startup(since=time.monotonic())
        while True:
            self._fail_if_exited([component], _no_event)
            ok, seen = self._probe(component)
            if ok:
                self._run_post_start(component, _no_event)
                return
            self._fail_if_hopeless(component, startup, seen, _no_event)
            time.sleep(POLL_INTERVAL_S)

    def start(self, name: str, wait: bool = True) -> None:
        component = self.component(name)
        self.require_supervisord()
        if self.client.process_info().get(name, {}).get("statename") != "RUNNING":
            self._check_ports_free(component)
            self.client.start(name)
        if wait:
            self.wait_healthy(name)

    def stop(self, name: str) -> None:
        self.component(name)
        self.require_supervisord()
        self.client.stop(name)

    def kill(self, name: str) -> None:
        """SIGKILL the component's whole process group, as a crash would (supervisord does not restart it)."""
        self.component(name)
        self.require_supervisord()
        pid = self.client.process_info().get(name, {}).get("pid") or 0
        if not pid:
            raise StackError(f"{name} is not running: nothing to kill")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.client.process_info().get(name, {}).get("statename") in DEAD_STATES:
                return
            time.sleep(0.1)

    def restart(self, name: str) -> None:
        self.stop(name)
        self.start(name)

    def log_path(self, name: str) -> Path:
        self.component(name)
        return sv.component_log(self.ctx, name)

    def follow_log(self, name: str, lines: int) -> Iterator[str]:
        path = self.log_path(name)
        yield from tail(path, lines)
        position = path.stat().st_size if path.exists() else 0
        while True:
            if path.exists():
                size = path.stat().st_size
                if size < position:  # rotated
                    position = 0
                if size > position:
                    with path.open("rb") as fh:
                        fh.seek(position)
                        chunk = fh.read()
                    position += len(chunk)
                    yield from chunk.decode(errors="replace").splitlines()
            time.sleep(0.5)

    # --- environment for tools ----------------------------------------------------------------

    def environment(self) -> dict[str, str]:
        """What `testbed env` exports: URLs, the CA, credentials (names are the stable contract)."""
        ctx, secrets = self.ctx, self.ctx.secrets
        pg_socket_dir = ctx.state_dir / "run" / "postgresql"
        return {
            "TESTBED_STATE_DIR": str(ctx.state_dir),
            "TESTBED_CA_CERT": str(ctx.ca_cert),
            "TESTBED_ES_URL": f"https://{ctx.address('elasticsearch')}",
            "TESTBED_ES_USER": "elastic",
            "TESTBED_ES_PASSWORD": secrets.elastic_password,
            "TESTBED_PROMETHEUS_URL": f"https://{ctx.address('prometheus')}",
            "TESTBED_PROMETHEUS_USER": "testbed",
            "TESTBED_PROMETHEUS_PASSWORD": secrets.prometheus_password,
            "TESTBED_ALERTMANAGER_URL": f"https://{ctx.address('alertmanager')}",
            "TESTBED_ALERTMANAGER_USER": "testbed",
            "TESTBED_ALERTMANAGER_PASSWORD": secrets.alertmanager_password,
            # promtool, amtool and the rest at the compose versions: export PATH="$TESTBED_BIN_DIR:$PATH".
            "TESTBED_BIN_DIR": str(builds.bin_dir()),
            # http_config files (basic auth + CA) for amtool --http.config.file and similar clients.
            "TESTBED_PROMETHEUS_HTTP_CONFIG": str(configs.client_http_config(ctx, "prometheus")),
            "TESTBED_ALERTMANAGER_HTTP_CONFIG": str(configs.client_http_config(ctx, "alertmanager")),
            "TESTBED_PG_DSN": (
                f"postgresql://testbed:{secrets.postgres_password}@{ctx.address('postgresql')}/postgres"
            ),
            "TESTBED_PG_SOCKET_DIR": str(pg_socket_dir),
            "TESTBED_AMQP_URL": f"amqp://testbed:{secrets.rabbitmq_password}@{ctx.address('rabbitmq')}/",
            "TESTBED_RABBITMQ_PROMETHEUS_URL": f"http://{ctx.address('rabbitmq_prometheus')}",
            "TESTBED_NODE_EXPORTER_URL": f"http://{ctx.address('node_exporter')}",
            "TESTBED_POSTGRES_EXPORTER_URL": f"http://{ctx.address('postgres_exporter')}",
            "TESTBED_ELASTICSEARCH_EXPORTER_URL": f"http://{ctx.address('elasticsearch_exporter')}",
            "TESTBED_BLACKBOX_EXPORTER_URL": f"http://{ctx.address('blackbox_exporter')}",
            # What the tools themselves read.
            "PGHOST": "127.0.0.1",
            "PGPORT": str(ctx.port("postgresql")),
            "PGUSER": "testbed",
            "PGPASSWORD": secrets.postgres_password,
            "PGDATABASE": "postgres",
        }


# --- module-level API (one stack per process environment) -----------------------------------------


def _stack() -> NativeStack:
    return NativeStack()


def up(on_event: EventCallback = _no_event) -> RenderContext:
    stack = _stack()
    stack.up(on_event)
    return stack.ctx


def down() -> None:
    _stack().down()


def status() -> dict[str, ComponentStatus]:
    return _stack().status()


def start(name: str) -> None:
    _stack().start(name)


def stop(name: str) -> None:
    _stack().stop(name)


def kill(name: str) -> None:
    _stack().kill(name)


def restart(name: str) -> None:
    _stack().restart(name)
