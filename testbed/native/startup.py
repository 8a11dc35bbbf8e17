"""Starting components and waiting until they are healthy: dependency order, fail fast, post-start hooks.

A component is launched once its dependencies are healthy, then probed every ``POLL_INTERVAL_S`` until
healthy, exited (failure at once), refusing our credentials for ``CREDENTIALS_GRACE_S`` (a wrong
password never heals) or past its health timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from testbed.context import RenderContext
from testbed.native import health
from testbed.native import supervisor as sv
from testbed.native.component import Component
from testbed.native.errors import EventCallback, StackError
from testbed.native.prepare import Renders
from testbed.native.processes import check_ports_free, tail

POLL_INTERVAL_S = 0.5
# supervisord process states meaning "not running and not going to be".
DEAD_STATES = {"STOPPED", "EXITED", "FATAL", "BACKOFF", "UNKNOWN"}
CREDENTIALS_GRACE_S = 30.0


@dataclass
class StartAttempt:
    """A component being started: since when, and since when it has refused our credentials."""

    since: float
    refused_since: float | None = None


class Starter:
    """Starts components through supervisord and gates them on their health checks."""

    def __init__(
        self,
        ctx: RenderContext,
        client: sv.SupervisorClient,
        ports_of: Callable[[Component], dict[str, int]],
    ) -> None:
        self.ctx = ctx
        self.client = client
        self.ports_of = ports_of

    def probe(self, component: Component) -> tuple[bool, str]:
        if component.health is None:
            return True, "no health check"
        return health.probe(component.health, self.ctx.ca_cert)

    def failure(self, component: Component, reason: str) -> StackError:
        lines = tail(sv.component_log(self.ctx, component.name))
        log = sv.component_log(self.ctx, component.name)
        return StackError(f"{component.name} {reason}; its log: {log}", detail="\n".join(lines))

    def start_in_order(
        self, targets: list[Component], on_event: EventCallback, renders: Renders | None = None
    ) -> None:
        """Start ``targets`` (in definition order) as their dependencies become healthy and, when
        ``renders`` are still running, as soon as their own render is done."""
        with ThreadPoolExecutor(max_workers=8) as pool:
            healthy = self._already_healthy(targets, pool, on_event)
            pending = [c for c in targets if c.name not in healthy]
            for component in pending:
                on_event(component.name, "waiting", ", ".join(component.depends_on))
            starting: dict[str, tuple[Component, StartAttempt]] = {}
            while pending or starting:
                for component in [c for c in pending if set(c.depends_on) <= healthy]:
                    if renders is not None and not renders.done(component.name):
                        continue
                    pending.remove(component)
                    self.launch(component)
                    starting[component.name] = (component, StartAttempt(since=time.monotonic()))
                    on_event(component.name, "starting", "")
                if pending and not starting:
                    if renders is not None and not all(renders.done(c.name) for c in pending):
                        renders.wait_any(POLL_INTERVAL_S)
                        continue
                    names = ", ".join(c.name for c in pending)
                    raise StackError(f"cannot start {names}: a dependency is not part of this start")
                batch = [component for component, _attempt in starting.values()]
                self.fail_if_exited(batch, on_event)
                for component, (ok, seen) in zip(batch, pool.map(self.probe, batch), strict=True):
                    if ok:
                        del starting[component.name]
                        self.run_post_start(component, on_event)
                        healthy.add(component.name)
                        on_event(component.name, "healthy", "")
                    else:
                        self.fail_if_hopeless(component, starting[component.name][1], seen, on_event)
                        on_event(component.name, "starting", seen)
                if starting:
                    time.sleep(POLL_INTERVAL_S)

    def _already_healthy(
        self, targets: list[Component], pool: ThreadPoolExecutor, on_event: EventCallback
    ) -> set[str]:
        info = self.client.process_info()
        running = [c for c in targets if info.get(c.name, {}).get("statename") == "RUNNING"]
        healthy = set()
        for component, (ok, _seen) in zip(running, pool.map(self.probe, running), strict=True):
            if ok:
                healthy.add(component.name)
                on_event(component.name, "already running", "")
        return healthy

    def launch(self, component: Component) -> None:
        """Start it unless supervisord already runs it (an earlier, interrupted `up`)."""
        if self.client.process_info().get(component.name, {}).get("statename") != "RUNNING":
            check_ports_free(component.name, self.ports_of(component))
            self.client.start(component.name)

    def fail_if_exited(self, components: list[Component], on_event: EventCallback) -> None:
        info = self.client.process_info()
        for component in components:
            state = info.get(component.name, {}).get("statename", "UNKNOWN")
            if state in DEAD_STATES:
                on_event(component.name, "failed", state)
                raise self.failure(component, f"exited at start ({state})")

    def fail_if_hopeless(
        self, component: Component, attempt: StartAttempt, seen: str, on_event: EventCallback
    ) -> None:
        now = time.monotonic()
        # A wrong password never heals: fail fast rather than at the timeout.
        if seen == "HTTP 401":
            attempt.refused_since = attempt.refused_since or now
        else:
            attempt.refused_since = None
        if attempt.refused_since is not None and now - attempt.refused_since > CREDENTIALS_GRACE_S:
            on_event(component.name, "failed", seen)
            raise self.failure(
                component,
                f"refuses the stack's credentials (HTTP 401 for {CREDENTIALS_GRACE_S:.0f} s): secrets.json "
                "no longer matches the password it keeps (Elasticsearch: bootstrap.password in its "
                "keystore): restore secrets.json, or delete that keystore to use the new one",
            )
        timeout = component.health.timeout_s if component.health else 60.0
        if now - attempt.since > timeout:
            on_event(component.name, "failed", seen)
            raise self.failure(component, f"not healthy within {timeout:.0f} s (last probe: {seen})")

    def run_post_start(self, component: Component, on_event: EventCallback) -> None:
        if component.post_start is None:
            return
        on_event(component.name, "starting", "post-start")
        try:
            component.post_start(self.ctx)
        except Exception as exc:
            on_event(component.name, "failed", "post-start")
            raise self.failure(component, f"post-start hook failed: {exc}") from exc

    def wait_healthy(self, component: Component, on_event: EventCallback) -> None:
        """One already launched component: wait until healthy (and run its post-start hook)."""
        attempt = StartAttempt(since=time.monotonic())
        while True:
            self.fail_if_exited([component], on_event)
            ok, seen = self.probe(component)
            if ok:
                self.run_post_start(component, on_event)
                return
            self.fail_if_hopeless(component, attempt, seen, on_event)
            time.sleep(POLL_INTERVAL_S)
