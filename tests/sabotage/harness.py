"""The sabotage matrix's harness: break one promise on the running stack, run a short scenario, undo.

Every sabotage goes through an interface a user has: a rendered config file in the stack's state
directory plus the component's own reload endpoint or a ``testbed`` command (``testbed restart``,
``testbed metrics reload``), or a service's fault flags. Each one is a context manager whose ``finally``
puts the stack back with the public command that re-renders from the repository, then
``assert_healthy`` proves nothing leaked into the next test: every component healthy, no alert active,
and the sabotaged promise's own check passing again.

Outcomes (promise → sabotage → the assertion that caught it → time to verdict) are merged into
``results/sabotage/matrix.json``; ``python -m bench.sabotage`` renders the README's table from it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from rich.console import Console

from bench.sabotage import CASES
from testbed.access import FAULT_ADMIN_PATH, StackAccess
from testbed.context import RenderContext
from testbed.metrics.client import reload_running
from testbed.native.control import NativeStack
from testbed.scenario.runner import RunOutcome, run_scenario
from testbed.scenario.verify import AssertionResult
from testbed.settings import REPO_ROOT

DATA = Path(__file__).parent / "data"
MATRIX_FILE = REPO_ROOT / "results" / "sabotage" / "matrix.json"
TESTBED = [str(Path(sys.executable).parent / "testbed")]
# How long the stack may take to be healthy (and quiet) again after a sabotage is undone.
HEALTHY_AGAIN_S = 90.0


# --- running a scenario and reading its verdict ------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    outcome: RunOutcome
    seconds: float  # wall time of the scenario run: the time to verdict

    @property
    def failed(self) -> list[AssertionResult]:
        return [r for r in self.outcome.results if not r.passed]

    def explain(self) -> str:
        return (
            "\n".join(
                f"{'ok  ' if r.passed else 'FAIL'} {r.name}: expected {r.expected}, "
                f"observed {r.observed} ({r.detail})"
                for r in self.outcome.results
            )
            + f"\n(results in {self.outcome.run_dir})"
        )


def run(scenario: Path, results: Path) -> Verdict:
    started = time.monotonic()
    outcome = run_scenario(scenario, "native", results, Console(force_terminal=False, quiet=True))
    return Verdict(outcome, time.monotonic() - started)


def _merge(case: str, entry: dict[str, Any]) -> None:
    MATRIX_FILE.parent.mkdir(parents=True, exist_ok=True)
    matrix: dict[str, Any] = json.loads(MATRIX_FILE.read_text()) if MATRIX_FILE.is_file() else {}
    order = CASES.index(case) if case in CASES else len(CASES)
    matrix[case] = {
        **entry,
        "order": order,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    tmp = MATRIX_FILE.with_suffix(".tmp")
    tmp.write_text(json.dumps(matrix, indent=1, sort_keys=True) + "\n")
    tmp.replace(MATRIX_FILE)


def record_check_outcome(case: str, promise: str, sabotage: str, caught: str, seconds: float) -> None:
    """A case judged by a check other than a scenario run (the dashboard panel check)."""
    _merge(
        case,
        {
            "promise": promise,
            "sabotage": sabotage,
            "caught_by": caught,
            "observed": None,
            "verdict": "failed",
            "time_to_verdict_s": round(seconds, 1),
            "note": "",
        },
    )


def record_outcome(
    case: str, promise: str, sabotage: str, caught: AssertionResult | None, verdict: Verdict, note: str = ""
) -> None:
    """Merge one case's outcome into the matrix file (cases run in any order, or alone)."""
    _merge(
        case,
        {
            "promise": promise,
            "sabotage": sabotage,
            "caught_by": caught.name if caught else None,
            "observed": f"{caught.observed} ({caught.detail})" if caught else None,
            "verdict": "passed" if verdict.outcome.passed else "failed",
            "time_to_verdict_s": round(verdict.seconds, 1),
            "note": note,
        },
    )


# --- public interfaces: the testbed CLI and config files -----------------------------------------------


def expect_caught(
    verdict: Verdict, must_contain: tuple[str, ...], case: str, promise: str, sabotage: str
) -> AssertionResult:
    """The failed assertion whose name contains every fragment: the sabotage was caught *by name*.

    The outcome is recorded first, caught or not, so that the matrix (and the README table rendered from
    it) shows a missed sabotage instead of keeping an earlier run's catch."""
    named = [r for r in verdict.failed if all(part in r.name for part in must_contain)]
    caught = named[0] if named else None
    missed = "" if caught else f"MISSED: no failed assertion named {' + '.join(must_contain)}"
    record_outcome(case, promise, sabotage, caught, verdict, note=missed)
    assert not verdict.outcome.passed, f"the sabotaged run passed:\n{verdict.explain()}"
    assert caught is not None, f"no failed assertion named {must_contain}:\n{verdict.explain()}"
    return caught


def testbed(*args: str) -> str:
    """Run a ``testbed`` command against this session's stack (same env), failing loudly."""
    answer = subprocess.run(
        [*TESTBED, *args], capture_output=True, text=True, cwd=REPO_ROOT, env=os.environ.copy(), timeout=300
    )
    assert answer.returncode == 0, (
        f"testbed {' '.join(args)} exited {answer.returncode}: {answer.stderr[-800:]}"
    )
    return answer.stdout


@contextmanager
def edited(path: Path, edit: Callable[[str], str]) -> Iterator[None]:
    """Rewrite one rendered config file in place (owner and mode kept); the original comes back after."""
    original = path.read_text()
    changed = edit(original)
    assert changed != original, f"the sabotage did not change {path}"
    try:
        path.write_text(changed)
        yield
    finally:
        path.write_text(original)


def prometheus_dir(ctx: RenderContext) -> Path:
    return ctx.config_dir / "prometheus"


@contextmanager
def metrics_config(ctx: RenderContext, path: Path, edit: Callable[[str], str]) -> Iterator[None]:
    """A Prometheus/Alertmanager config edited and reloaded (their /-/reload); undone by
    ``testbed metrics reload``, which re-renders every file from the repository and reloads."""
    try:
        with edited(path, edit):
            reload_running(ctx)
            yield
    finally:
        testbed("metrics", "reload")


@contextmanager
def rsyslog_config(ctx: RenderContext, edit: Callable[[str], str]) -> Iterator[None]:
    """The shipper's rendered config edited, then ``testbed restart rsyslog``; undone the same way."""
    try:
        with edited(ctx.config_dir / "rsyslog" / "rsyslog.conf", edit):
            testbed("restart", "rsyslog")
            yield
    finally:
        testbed("restart", "rsyslog")


def yaml_edit(change: Callable[[Any], None]) -> Callable[[str], str]:
    def edit(text: str) -> str:
        document = yaml.safe_load(text)
        change(document)
        return yaml.safe_dump(document, sort_keys=False)

    return edit


@contextmanager
def fault_flags(ctx: RenderContext, service: str, instance: int = 0, **flags: Any) -> Iterator[None]:
    """A service's fault flags (``PUT /admin/faults``), cleared with ``DELETE`` whatever happens."""
    access = StackAccess(ctx)
    url = access.service_url(service, instance) + FAULT_ADMIN_PATH
    headers = access.fault_admin_headers()
    try:
        httpx.put(url, json={"ttl_s": 600, **flags}, headers=headers, timeout=10).raise_for_status()
        yield
    finally:
        httpx.delete(url, headers=headers, timeout=10).raise_for_status()


@contextmanager
def later(delay_s: float, action: Callable[[], None]) -> Iterator[list[BaseException]]:
    """Run ``action`` ``delay_s`` seconds into the block (mid-run); its error is re-raised after."""
    errors: list[BaseException] = []

    def target() -> None:
        time.sleep(delay_s)
        try:
            action()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        yield errors
    finally:
        thread.join(timeout=delay_s + 300)
    if errors:
        raise errors[0]


# --- healthy again --------------------------------------------------------------------------------------


def active_alerts(ctx: RenderContext) -> list[str]:
    """Alerts Alertmanager holds as active (not silenced/inhibited), as ``name{job}``."""
    client, base = StackAccess(ctx).alertmanager()
    with client:
        answer = client.get(f"{base}/api/v2/alerts", params={"active": "true", "silenced": "false"})
        answer.raise_for_status()
    return sorted(
        f"{a['labels'].get('alertname')}{{{a['labels'].get('job', '')}}}"
        for a in answer.json()
        if a.get("status", {}).get("state") == "active"
    )


def firing_in_prometheus(ctx: RenderContext) -> list[str]:
    client, base = StackAccess(ctx).prometheus()
    with client:
        answer = client.get(f"{base}/api/v1/query", params={"query": 'ALERTS{alertstate="firing"}'})
        answer.raise_for_status()
    return sorted(
        f"{r['metric'].get('alertname')}{{{r['metric'].get('job', '')}}}"
        for r in answer.json()["data"]["result"]
    )


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout_s:g} s for: {what}"
        time.sleep(2)


# The alert the matrix's own sabotages raise. Others (SLO burn rates, LogPipelineStalled) also follow
# the machine's load and earlier tests' faults: their absence is not this harness's promise to check.
RAISED_BY_SABOTAGE = ("TargetDown",)


def active_now(ctx: RenderContext) -> set[str]:
    found = {f"firing in Prometheus: {a}" for a in firing_in_prometheus(ctx)} | {
        f"active in Alertmanager: {a}" for a in active_alerts(ctx)
    }
    return {a for a in found if a.split(": ", 1)[1].split("{", 1)[0] in RAISED_BY_SABOTAGE}


def log_arrives(ctx: RenderContext) -> Callable[[], str | None]:
    """The shipper's promise, checked live: one new gateway request's access log becomes searchable."""
    access = StackAccess(ctx)
    request_id = f"sabotage-check-{uuid.uuid4().hex}"
    sent: list[bool] = []

    def check() -> str | None:
        if not sent:
            headers = {"X-Request-ID": request_id}
            httpx.get(
                access.service_url("gateway") + "/catalog", headers=headers, timeout=10
            ).raise_for_status()
            sent.append(True)
        client, base = access.elasticsearch()
        with client:
            client.post(f"{base}/logs-testbed-*/_refresh").raise_for_status()
            answer = client.post(
                f"{base}/logs-testbed-*/_count", json={"query": {"term": {"http.request.id": request_id}}}
            )
            answer.raise_for_status()
        return (
            None if answer.json()["count"] > 0 else f"the access log of {request_id} is not in Elasticsearch"
        )

    return check


def assert_healthy(
    ctx: RenderContext,
    promise_holds: Callable[[], str | None] | None = None,
    already_active: set[str] | None = None,
) -> None:
    """Every component healthy, no alert firing (Prometheus) or active (Alertmanager) beyond
    ``already_active`` (what was active before the sabotage), and the promise's own check passing
    (``promise_holds`` returns None, or what is still wrong); waits up to HEALTHY_AGAIN_S."""
    stack = NativeStack(ctx)
    deadline = time.monotonic() + HEALTHY_AGAIN_S
    while True:
        problems = [f"{name} {s.health}" for name, s in stack.status().items() if s.health != "healthy"]
        if not problems and already_active is not None:
            problems += sorted(active_now(ctx) - already_active)
        if not problems and promise_holds is not None and (why := promise_holds()):
            problems.append(why)
        if not problems:
            return
        assert time.monotonic() < deadline, f"the stack is not healthy again: {'; '.join(problems)}"
        time.sleep(3)


@contextmanager
def healthy_after(
    ctx: RenderContext, promise_holds: Callable[[], str | None] | None = None
) -> Iterator[None]:
    """Wraps a sabotage: afterwards (whatever happened) the stack must be healthy, the alerts the
    sabotage raised gone, and the promise's own check passing again."""
    before = active_now(ctx)
    try:
        yield
    finally:
        assert_healthy(ctx, promise_holds, before)


def prometheus_query(ctx: RenderContext, expr: str) -> list[dict[str, Any]]:
    client, base = StackAccess(ctx).prometheus()
    with client:
        answer = client.get(f"{base}/api/v1/query", params={"query": expr})
        answer.raise_for_status()
    result: list[dict[str, Any]] = answer.json()["data"]["result"]
    return result


def prometheus_rules(ctx: RenderContext) -> dict[str, dict[str, Any]]:
    """Alerting rules Prometheus has loaded, by name (the last one of a name wins)."""
    client, base = StackAccess(ctx).prometheus()
    with client:
        answer = client.get(f"{base}/api/v1/rules", params={"type": "alert"})
        answer.raise_for_status()
    return {rule["name"]: rule for group in answer.json()["data"]["groups"] for rule in group["rules"]}
