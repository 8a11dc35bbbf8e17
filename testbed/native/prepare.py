"""Before anything starts: check the installation, lay out the state dir, render every config.

Idempotent; tells which components' rendered config changed, so `up` restarts those that run.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

from testbed.context import RenderContext
from testbed.native import configs, pki, setup
from testbed.native import supervisor as sv
from testbed.native.component import Component
from testbed.native.errors import StackError


def check_installed(components: list[Component]) -> None:
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
    for component in components:
        executable = component.command[0]
        if executable.startswith("/") and not os.access(executable, os.X_OK):
            raise StackError(f"{executable} (for {component.name}) is missing: run `testbed setup`")


def config_fingerprint(ctx: RenderContext, name: str) -> str:
    """Digest of the files under ``<config>/<name>``: tells whether a render changed them."""
    digest = hashlib.sha256()
    directory = ctx.config_dir / name
    if directory.is_dir():
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                digest.update(str(path.relative_to(directory)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _render(ctx: RenderContext, component: Component) -> tuple[str, bool]:
    """Render one component's config: (its name, whether its rendered files changed)."""
    assert component.render is not None
    before = config_fingerprint(ctx, component.name)
    try:
        component.render(ctx)
    except Exception as exc:
        raise StackError(f"rendering the config of {component.name} failed: {exc}") from exc
    return component.name, config_fingerprint(ctx, component.name) != before


def _chown_state(ctx: RenderContext) -> None:
    """The stack user owns the state dir, except what must stay root's (supervisord, the CA key)."""
    keep = {sv.supervisor_dir(ctx), ctx.pki_dir / "ca.key", ctx.state_dir / "secrets.json"}
    if setup.stack_user() is None:
        return
    entry = pwd.getpwnam(setup.STACK_USER)
    os.chown(ctx.state_dir, entry.pw_uid, entry.pw_gid)
    for root, dirs, files in os.walk(ctx.state_dir):
        dirs[:] = [d for d in dirs if Path(root) / d not in keep]
        for name in dirs + files:
            path = Path(root) / name
            if path in keep:
                continue
            # A running component's transient files (PostgreSQL's pg_internal.init) may vanish meanwhile.
            with contextlib.suppress(FileNotFoundError):
                stat = path.lstat()
                if stat.st_uid != entry.pw_uid or stat.st_gid != entry.pw_gid:
                    os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def lay_out(ctx: RenderContext, components: list[Component]) -> None:
    """Directories, PKI, client configs and supervisord.conf: what every component needs before its own
    render (supervisord's config does not depend on the renders)."""
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
    for component in components:
        (ctx.log_dir / component.name).mkdir(parents=True, exist_ok=True)
    sv.supervisor_dir(ctx).mkdir(parents=True, exist_ok=True)
    sv.supervisor_dir(ctx).chmod(0o700)
    pki.ensure_pki(ctx.pki_dir)
    configs.render_client_http_configs(ctx)
    conf = sv.render_conf(ctx, components, setup.stack_user())
    sv.conf_path(ctx).write_text(conf)
    sv.conf_path(ctx).chmod(0o600)
    _chown_state(ctx)


class Renders:
    """Every component's render, side by side in threads; a component may start once its own is done.

    Renders are independent of each other and some are slow on a fresh state dir (Elasticsearch's
    keystore tool is a JVM, initdb): waiting for all of them before starting anything made the first
    start wait for the slowest one everywhere.
    """

    def __init__(self, ctx: RenderContext, components: list[Component], own_each: bool = True) -> None:
        self.ctx = ctx
        self.own_each = own_each  # False: the caller hands the state dir to the stack user once, after all
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="render")
        self._owner_lock = threading.Lock()
        self.pending: dict[str, Future[bool]] = {
            c.name: self._pool.submit(self._render_owned, c) for c in components if c.render is not None
        }

    def _render_owned(self, component: Component) -> bool:
        _name, changed = _render(self.ctx, component)
        if not self.own_each:
            return changed
        with self._owner_lock:  # what the render wrote goes to the stack user before the component starts
            _chown_state(self.ctx)
        return changed

    def done(self, name: str) -> bool:
        """Whether ``name`` may start as far as its render goes (raises the render's failure)."""
        future = self.pending.get(name)
        if future is None:
            return True
        if not future.done():
            return False
        future.result()
        return True

    def wait_any(self, timeout_s: float) -> None:
        """Return when a render finishes, or after ``timeout_s``."""
        wait(
            [f for f in self.pending.values() if not f.done()], timeout=timeout_s, return_when=FIRST_COMPLETED
        )

    def changed(self) -> set[str]:
        """The components whose rendered files changed (waits for every render)."""
        return {name for name, future in self.pending.items() if future.result()}

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def render_all(ctx: RenderContext, components: list[Component]) -> set[str]:
    """Directories, PKI, every component's config and supervisord.conf (the installation is checked first
    by the caller). Returns the components whose rendered config files changed."""
    lay_out(ctx, components)
    renders = Renders(ctx, components, own_each=False)
    try:
        changed = renders.changed()
    finally:
        renders.close()
    _chown_state(ctx)
    return changed
