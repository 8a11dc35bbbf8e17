"""``testbed run``: one scenario = load and chaos on a shared timeline, then verification and a report.

Timeline: t=0 Locust starts (headless subprocess); at ``chaos.start_at_s`` ``chaos run`` starts
(subprocess). Meanwhile the runner polls Elasticsearch for this run's access logs. When both are done
it keeps watching for ``settle_s`` (late logs, alert resolution), reads every signal into a
``RunRecord``, verifies it and writes ``results/<run-id>/``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from testbed import backend as backends
from testbed.access import StackAccess
from testbed.scenario import collect, privacy
from testbed.scenario.errors import ExitCode, ScenarioInputError
from testbed.scenario.record import RunRecord
from testbed.scenario.spec import Scenario, check_alert_names, known_alert_names, load_scenario
from testbed.scenario.verify import AssertionResult, all_passed, expected_alert_seen, verify
from testbed.settings import REPO_ROOT


def _write_artifacts(
    run_dir: Path,
    scenario: Scenario,
    record: RunRecord,
    results: list[AssertionResult],
    wall_s: float,
    access: StackAccess | None = None,
) -> Path:
    # matplotlib is imported only when a report is written: every `testbed` command would pay for it.
    from testbed.scenario.report import write_artifacts

    return write_artifacts(run_dir, scenario, record, results, wall_s, access.ctx if access else None)


BIN_DIR = Path(sys.executable).parent
LOCUSTFILE = REPO_ROOT / "load" / "locustfile.py"
POLL_INTERVAL_S = 5.0  # alerts, progress
# Access-log search: each log's sighting is the send time of the first search that found it, so the
# measured lag is exact to this interval plus one search (was 5 s: the lag plot was a 5-s sawtooth).
LOG_POLL_INTERVAL_S = 0.5
# Extra time a subprocess gets beyond its planned duration before the runner stops it.
OVERRUN_S = 120.0


@dataclass(frozen=True)
class RunOutcome:
    scenario: Scenario
    run_dir: Path
    report: Path
    results: list[AssertionResult]
    wall_s: float

    @property
    def passed(self) -> bool:
        return all_passed(self.results)


def ensure_stack(backend: backends.Backend, console: Console) -> None:
    """Bring the stack up when a component is not healthy; a stack that cannot come up is bad input (2)."""
    problem = backend.problem()
    if problem:
        raise ScenarioInputError(f"--backend {backend.name}", "", problem, "use the native backend (default)")

    def say(unhealthy: list[str]) -> None:
        console.print(f"[yellow]bringing the stack up[/] (not healthy: {', '.join(unhealthy)})")

    try:
        backend.ensure_up(say)
    except backends.StackError as exc:
        raise ScenarioInputError(
            "stack", "", f"the {backend.name} stack is not up ({exc})", backend.up_hint
        ) from exc


# Workers on other machines (README, "Load across machines"): the master waits for this many of them
# (instead of starting local ones) and listens for them on this address.
REMOTE_WORKERS_ENV = "TESTBED_LOCUST_REMOTE_WORKERS"
MASTER_BIND_ENV = "TESTBED_LOCUST_MASTER_BIND"


def _locust_command(scenario: Scenario, run_dir: Path, gateway_url: str, run_id: str = "") -> list[str]:
    command = [
        str(BIN_DIR / "locust"),
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        gateway_url,
        "--csv",
        str(run_dir / "locust"),
        "--csv-full-history",
        "--json-file",
        str(run_dir / "locust"),
        "--html",
        str(run_dir / "locust.html"),
        "--only-summary",
        "--stop-timeout",
        "5",
        "--run-time",
        f"{scenario.load.duration_s + 30}s",
    ]  # a backstop: the shape stops first
    # Custom arguments reach every worker with the spawn message (load/locustfile.py).
    command += ["--testbed-run-id", run_id, "--testbed-profile", scenario.load.model_dump_json()]
    remote = int(os.environ.get(REMOTE_WORKERS_ENV, "0") or 0)
    if remote > 0:
        command += ["--master", "--expect-workers", str(remote), "--expect-workers-max-wait", "120"]
        command += ["--master-bind-host", os.environ.get(MASTER_BIND_ENV, "127.0.0.1")]
    elif scenario.load.processes > 1:
        command += ["--processes", str(scenario.load.processes)]
    return command


def _chaos_command(scenario: Scenario, run_dir: Path) -> list[str]:
    assert scenario.chaos is not None
    command = [
        str(BIN_DIR / "chaos"),
        "--no-version-check",
        "--log-file",
        str(run_dir / "chaostoolkit.log"),
        "run",
        "--journal-path",
        str(run_dir / "journal.json"),
    ]
    for key, value in scenario.chaos.configuration.items():
        # Typed (key:int=value), so a number can drive a pause ("pauses: {after: ${down_s}}").
        kind = "int" if isinstance(value, int) else "float" if isinstance(value, float) else "str"
        command += ["--var", f"{key}:{kind}={value}"]
    return [*command, str(scenario.chaos.experiment_path())]


def _spawn(command: list[str], env: dict[str, str], log: IO[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT, text=True)


def _stop(process: subprocess.Popen[str] | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def run_scenario(
    path: Path, backend: str = "native", results_root: Path | None = None, console: Console | None = None
) -> RunOutcome:
    """Run one scenario end to end. Raises ``ScenarioInputError`` for bad input (exit 2)."""
    console = console or Console()
    scenario = load_scenario(path)
    check_alert_names(scenario, path, known_alert_names())
    try:
        stack = backends.named(backend)
    except ValueError as exc:
        raise ScenarioInputError("--backend", "", str(exc), "use native or compose") from None
    ensure_stack(stack, console)
    access = stack.access()
    cross_signal = scenario.assertions.cross_signal
    if cross_signal and (problem := collect.promql_problem(access, cross_signal.prometheus_counter)):
        raise ScenarioInputError(
            path,
            "assertions.cross_signal.prometheus_counter",
            problem,
            "name a counter the services export (services/common/metrics.py)",
        )

    started_wall = time.monotonic()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_id = f"{scenario.name}-{stamp}"
    run_dir = (results_root or REPO_ROOT / "results") / run_id
    request_dir = run_dir / "requests"
    request_dir.mkdir(parents=True)
    notes: list[str] = []

    counter_query = cross_signal.prometheus_counter if cross_signal else None
    # Alerts already active before the load starts: forbidden ones fail the run (scenarios/README.md).
    active, alert_read_failures = collect.active_alerts(access, "start", time.time())

    env = {
        **os.environ,
        "TESTBED_LOAD_PROFILE": scenario.load.model_dump_json(),
        "TESTBED_RUN_ID": run_id,
        "TESTBED_REQUEST_LOG_DIR": str(request_dir),
        "TESTBED_BACKEND": stack.name,
    }
    watcher = collect.LogWatcher(access, run_id)
    locust: subprocess.Popen[str] | None = None
    chaos: subprocess.Popen[str] | None = None
    planned_s = scenario.load.duration_s + scenario.settle_s
    with (
        (run_dir / "locust.log").open("w") as locust_log,
        (run_dir / "chaos.log").open("w") as chaos_log,
        Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[status]}"),
            console=console,
            transient=False,
        ) as progress,
    ):
        task = progress.add_task(scenario.name, total=planned_s, status="starting load")
        try:
            started_at = time.time()
            locust = _spawn(
                _locust_command(scenario, run_dir, access.service_url("gateway"), run_id), env, locust_log
            )
            deadline = (
                started_at
                + planned_s
                + OVERRUN_S
                + (scenario.chaos.fault_duration_s if scenario.chaos else 0)
            )
            load_ended_at: float | None = None
            locust_exit: int | None = None
            next_poll = next_log_poll = started_at
            logs_complete = alerts_complete = False
            seen = 0
            while True:
                now = time.time()
                if chaos is None and scenario.chaos and now - started_at >= scenario.chaos.start_at_s:
                    chaos = _spawn(_chaos_command(scenario, run_dir), env, chaos_log)
                if load_ended_at is None and locust.poll() is not None:
                    load_ended_at = now
                    locust_exit = locust.returncode
                chaos_done = scenario.chaos is None or (chaos is not None and chaos.poll() is not None)
                if now >= next_log_poll:
                    next_log_poll = now + LOG_POLL_INTERVAL_S
                    seen = watcher.poll()
                if now >= next_poll:
                    next_poll = now + POLL_INTERVAL_S
                    during, _ = collect.active_alerts(access, "during", now)  # a stopped AM/Prometheus: skip
                    collect.merge_active(active, during)
                    answered = [s for s in collect.read_requests(request_dir) if s.status]
                    logs_complete = load_ended_at is not None and seen >= len(answered)
                    if load_ended_at is not None and chaos_done and scenario.assertions.alerts_expected:
                        alerts_so_far, _ = collect.read_alerts(access, started_at - 1)
                        alerts_complete = all(
                            expected_alert_seen(alerts_so_far, alert, started_at)
                            for alert in scenario.assertions.alerts_expected
                        )
                    chaos_state = (
                        "—"
                        if scenario.chaos is None
                        else ("waiting" if chaos is None else "running" if chaos.poll() is None else "done")
                    )
                    progress.update(
                        task,
                        completed=min(now - started_at, planned_s),
                        status=f"requests {len(answered)} · logs found {seen} · chaos {chaos_state}",
                    )
                if load_ended_at is not None and chaos_done:
                    settled = now - load_ended_at >= scenario.settle_s
                    # Stop settling early once every access log has arrived, every expected alert has been
                    # notified (and resolved when asserted) and Prometheus scraped the last requests.
                    scraped = now - load_ended_at >= 2 * POLL_INTERVAL_S
                    alerts_done = alerts_complete or not scenario.assertions.alerts_expected
                    if settled or (logs_complete and scraped and alerts_done):
                        break
                if now > deadline:
                    notes.append(f"stopped after {now - started_at:.0f} s: load or chaos overran the plan")
                    break
                time.sleep(0.1)
        finally:
            _stop(locust)
            _stop(chaos)
        progress.update(task, completed=planned_s, status="collecting")

    record = _collect(
        scenario,
        run_id,
        run_dir,
        request_dir,
        started_at,
        load_ended_at or time.time(),
        watcher,
        access,
        counter_query,
        notes,
    )
    # None: the runner had to stop Locust (it overran); its exit code then says nothing.
    record.locust = collect.read_locust(run_dir, locust_exit, scenario.load)
    at_end, end_failures = collect.active_alerts(access, "end", time.time())
    collect.merge_active(active, at_end)
    record.active_alerts = active
    record.alert_read_failures = alert_read_failures + end_failures
    results = verify(scenario, record)
    wall_s = time.monotonic() - started_wall
    report = _write_artifacts(run_dir, scenario, record, results, wall_s, access)
    return RunOutcome(scenario, run_dir, report, results, wall_s)


def _collect(
    scenario: Scenario,
    run_id: str,
    run_dir: Path,
    request_dir: Path,
    started_at: float,
    ended_at: float,
    watcher: collect.LogWatcher,
    access: StackAccess,
    counter_query: str | None,
    notes: list[str],
) -> RunRecord:
    watcher.poll(full=True)
    if watcher.last_error:
        notes.append(watcher.last_error)
    es_count = watcher.count() if scenario.assertions.cross_signal else None
    prometheus_count = None
    if counter_query:
        prometheus_count, why = collect.counter_increase(access, counter_query, started_at, time.time())
        if why:
            notes.append(why)
    alerts, why = collect.read_alerts(access, started_at - 1)
    if why:
        notes.append(why)
    status, deviated, window = collect.read_journal(run_dir / "journal.json")
    if scenario.chaos and status is None:
        notes.append("no chaos journal: see chaos.log")
    return RunRecord(
        scenario=scenario.name,
        run_id=run_id,
        started_at=started_at,
        ended_at=ended_at,
        fault_window=window,
        chaos_status=status,
        chaos_deviated=deviated,
        requests=collect.read_requests(request_dir),
        log_sightings=watcher.sightings,
        prometheus_request_count=prometheus_count,
        probe_requests=collect.probe_requests_sent(run_dir / "journal.json"),
        es_access_log_count=es_count,
        alerts=alerts,
        privacy=privacy.scan(access, run_id) if scenario.assertions.no_personal_data else None,
        notes=notes,
    )


def reverify(run_dir: Path, scenario_path: Path) -> RunOutcome:
    """Verify a recorded run again (after changing assertions), rewriting its report."""
    scenario = load_scenario(scenario_path)
    record = RunRecord.load(run_dir / "record.json")
    results = verify(scenario, record)
    wall_s = json.loads((run_dir / "summary.json").read_text()).get("wall_time_s", 0.0)
    report = _write_artifacts(run_dir, scenario, record, results, wall_s)
    return RunOutcome(scenario, run_dir, report, results, wall_s)


def exit_code_for(outcomes: list[RunOutcome]) -> ExitCode:
    return ExitCode.PASSED if outcomes and all(o.passed for o in outcomes) else ExitCode.ASSERTION_FAILED
