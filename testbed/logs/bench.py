"""``testbed bench logs``: figures of the native log pipeline (file → rsyslog → Elasticsearch).

Synthetic events in the services' own ECS format are appended to ``<services_log_dir>/bench-0.log`` at
a controlled rate (the services cannot emit 2,000+ events/s on this machine; the pipeline is what is
measured). Every 10th event is a probe, polled for in Elasticsearch every 100 ms: its latency is the
time from being written to being searchable.

Throughput is reported against the node's own ceiling, measured in the same run: a direct bulk client
(elasticsearch-py ``parallel_bulk``, 2 threads, 2,000 documents per bulk, as ``logs_writer``) indexes
the same documents the same way (``create`` with the event's id as ``_id``, the daily index), before and
after the pipeline's run; the pipeline's figure is divided by their mean. A ratio is far less sensitive
to the machine's load than an absolute rate.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError, helpers

from testbed.context import RenderContext
from testbed.logs import clients, layout
from testbed.native.control import NativeStack
from testbed.settings import REPO_ROOT

RESULTS_FILE = REPO_ROOT / "bench" / "RESULTS-logs.md"
PROBE_EVERY = 10
DATASET = "bench.logs"
# Goals (issue 12), written here rather than read from the config under test.
LATENCY_GOAL_S = 1.0  # p99 emit → searchable at LATENCY_GOAL_RATE
LATENCY_GOAL_RATE = 500.0
CEILING_RATIO_GOAL = 0.9  # pipeline throughput / direct bulk client throughput
# The direct client: what a well-configured shipper could do against this node.
CEILING_THREADS = 2
CEILING_CHUNK = 2000


class BenchError(RuntimeError):
    pass


def _event(run_id: str, sequence: int) -> str:
    return json.dumps(_event_fields(run_id, sequence), separators=(",", ":"))


def _event_fields(run_id: str, sequence: int) -> dict[str, Any]:
    return {
        "@timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "log": {"level": "info", "logger": "bench"},
        "ecs.version": "1.6.0",
        "service": {"name": "bench", "node": {"name": "bench-0"}},
        "event": {"id": f"{run_id}-{sequence}", "dataset": DATASET, "sequence": sequence},
        "transaction": {"id": f"{run_id}-{sequence}"},
        "labels": {"bench_run": run_id, "probe": "yes" if sequence % PROBE_EVERY == 0 else "no"},
        "message": f"bench event {sequence} of run {run_id}",
    }


@dataclass
class Writer:
    """Appends events at ``rate`` per second; remembers when each probe was written."""

    path: Path
    run_id: str
    written_at: dict[int, float] = field(default_factory=dict)
    count: int = 0

    def write(self, rate: float, duration_s: float) -> None:
        start = time.monotonic()
        target_total = int(rate * duration_s)
        with self.path.open("a", encoding="utf-8") as fh:
            while self.count < target_total:
                due = int((time.monotonic() - start) * rate) + 1
                batch = min(due, target_total) - self.count
                if batch > 0:
                    lines = []
                    for _ in range(batch):
                        lines.append(_event(self.run_id, self.count))
                        if self.count % PROBE_EVERY == 0:
                            self.written_at[self.count] = time.time()
                        self.count += 1
                    fh.write("\n".join(lines) + "\n")
                    fh.flush()
                time.sleep(0.005)


def _probe_poller(es: Elasticsearch, run_id: str, seen: dict[int, float], stop: threading.Event) -> None:
    index = layout.shipping().index_pattern
    query = {"bool": {"filter": [{"term": {"labels.bench_run": run_id}}, {"term": {"labels.probe": "yes"}}]}}
    last = -1
    while not stop.is_set():
        bounded = {
            "bool": {"filter": [*query["bool"]["filter"], {"range": {"event.sequence": {"gt": last}}}]}
        }
        try:
            response = es.search(
                index=index,
                query=bounded,
                size=5000,
                source_includes=["event.sequence"],
                ignore_unavailable=True,
            )
        except (ApiError, TransportError):
            time.sleep(0.5)  # a probe seen later only counts as slower: it never hides a loss
            continue
        now = time.time()
        for hit in response["hits"]["hits"]:
            sequence = int(hit["_source"]["event"]["sequence"])
            seen.setdefault(sequence, now)
            last = max(last, sequence)
        time.sleep(0.1)


def _count(es: Elasticsearch, run_id: str) -> int:
    query = {"term": {"labels.bench_run": run_id}}
    return int(es.count(index=layout.shipping().index_pattern, query=query, ignore_unavailable=True)["count"])


def _wait_all(es: Elasticsearch, run_id: str, expected: int, timeout_s: float) -> float:
    """Seconds until ``expected`` documents of the run are searchable."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        got = _count(es, run_id)
        if got >= expected:
            if got > expected:
                raise BenchError(f"run {run_id}: {got} documents for {expected} events (duplicates)")
            return time.monotonic() - start
        time.sleep(0.25)
    raise BenchError(f"run {run_id}: only {_count(es, run_id)} of {expected} events after {timeout_s:.0f} s")


@dataclass
class LatencyStep:
    rate: float
    events: int
    probes: int
    p50_s: float
    p99_s: float
    max_s: float


@dataclass
class Report:
    steps: list[LatencyStep] = field(default_factory=list)
    max_rate_events: int = 0
    max_rate_per_s: float = 0.0
    ceiling_per_s: list[float] = field(default_factory=list)  # before and after the pipeline's run
    refresh_interval: str = ""
    backlog_events: int = 0
    backlog_outage_s: float = 0.0
    backlog_drain_s: float = 0.0
    machine: str = ""
    load_before: float = 0.0
    load_after: float = 0.0

    @property
    def ceiling_mean_per_s(self) -> float:
        return statistics.fmean(self.ceiling_per_s) if self.ceiling_per_s else 0.0

    @property
    def ratio(self) -> float:
        return self.max_rate_per_s / self.ceiling_mean_per_s if self.ceiling_mean_per_s else 0.0

    def goal_step(self) -> LatencyStep | None:
        return next((step for step in self.steps if step.rate == LATENCY_GOAL_RATE), None)

    @property
    def goals_met(self) -> bool:
        step = self.goal_step()
        return self.ratio >= CEILING_RATIO_GOAL and step is not None and step.p99_s <= LATENCY_GOAL_S

    def markdown(self) -> str:
        ceilings = ", ".join(f"{c:,.0f}" for c in self.ceiling_per_s)
        lines = [
            "# Log pipeline figures (native: files → rsyslog → Elasticsearch)",
            "",
            f"Measured by `testbed bench logs` on {self.machine}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC,",
            "with the rest of the native stack running. Latency = written to the file → searchable.",
            f"Load average (1 min): {self.load_before:.1f} before, {self.load_after:.1f} after; the CPUs are",
            "shared with every other process on the machine, so absolute figures vary with its load: the",
            "ratio to the node's own ceiling, measured in the same run, is the robust figure.",
            f"Index `refresh_interval` of the day's log index: {self.refresh_interval or 'unknown'}.",
            "",
            "| rate (events/s) | events | probes | p50 (s) | p99 (s) | max (s) | goal p99 |",
            "|---:|---:|---:|---:|---:|---:|---|",
        ]
        for step in self.steps:
            if step.rate == LATENCY_GOAL_RATE:
                goal = f"≤ {LATENCY_GOAL_S:.1f} s: {'met' if step.p99_s <= LATENCY_GOAL_S else 'MISSED'}"
            else:
                goal = ""
            lines.append(
                f"| {step.rate:.0f} | {step.events} | {step.probes} | {step.p50_s:.2f} | {step.p99_s:.2f} "
                f"| {step.max_s:.2f} | {goal} |"
            )
        lines += [
            "",
            "| throughput, same documents, `create` with explicit `_id` | events/s | goal |",
            "|---|---:|---|",
            f"| node ceiling: direct bulk client ({CEILING_THREADS} threads, {CEILING_CHUNK:,} per bulk), "
            f"before / after | {ceilings} | |",
            f"| pipeline: {self.max_rate_events:,} events written at once, all searchable, 0 lost, "
            f"0 duplicated | {self.max_rate_per_s:,.0f} | |",
            f"| **pipeline / ceiling** | **{self.ratio:.2f}** | ≥ {CEILING_RATIO_GOAL}: "
            f"{'met' if self.ratio >= CEILING_RATIO_GOAL else 'MISSED'} |",
            "",
            f"- Backlog: the shipper stopped for {self.backlog_outage_s:.0f} s while "
            f"{self.backlog_events} events were written; after its restart the backlog was searchable "
            f"in **{self.backlog_drain_s:.1f} s** (0 lost, 0 duplicated).",
            "- 0 duplicated: every event has its own `event.id`, shipped as `_id` with `create` (a replay is "
            "a 409, never a second document), and the count of the run's documents must equal the events "
            "written, exactly.",
            "",
        ]
        return "\n".join(lines)


def latency_step(es: Elasticsearch, path: Path, rate: float, duration_s: float) -> LatencyStep:
    run_id = f"bench-{uuid.uuid4().hex[:10]}"
    writer = Writer(path, run_id)
    seen: dict[int, float] = {}
    stop = threading.Event()
    poller = threading.Thread(target=_probe_poller, args=(es, run_id, seen, stop), daemon=True)
    poller.start()
    try:
        writer.write(rate, duration_s)
        _wait_all(es, run_id, writer.count, timeout_s=120)
        deadline = time.monotonic() + 5
        while len(seen) < len(writer.written_at) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        poller.join()
    latencies = sorted(seen[s] - writer.written_at[s] for s in writer.written_at if s in seen)
    if not latencies:
        raise BenchError("no probe was seen in Elasticsearch")
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return LatencyStep(
        rate=rate,
        events=writer.count,
        probes=len(latencies),
        p50_s=statistics.median(latencies),
        p99_s=p99,
        max_s=latencies[-1],
    )


def max_rate(es: Elasticsearch, path: Path, events: int) -> tuple[int, float]:
    """Write ``events`` at once (encoded beforehand: the writer's own cost is not the pipeline's);
    events/s until the last one is searchable."""
    run_id = f"bench-{uuid.uuid4().hex[:10]}"
    blob = "".join(_event(run_id, i) + "\n" for i in range(events))
    start = time.monotonic()
    with path.open("a", encoding="utf-8") as fh:
        fh.write(blob)
    _wait_all(es, run_id, events, timeout_s=600)
    return events, events / (time.monotonic() - start)


def ceiling(es: Elasticsearch, writer: Elasticsearch, path: Path, events: int) -> float:
    """The node's own ceiling: the same documents rsyslog would send (the event plus ``log.file.path``
    and ``log.offset``), bulk-created with their ``_id`` by a direct client; events/s until searchable."""
    run_id = f"bench-{uuid.uuid4().hex[:10]}"
    prefix = layout.shipping().index_prefix
    actions = []
    offset = 0
    for sequence in range(events):
        document = _event_fields(run_id, sequence)
        document["log"]["file"] = {"path": str(path)}
        document["log"]["offset"] = offset
        offset += len(_event(run_id, sequence)) + 1
        day = document["@timestamp"][:10].replace("-", ".")
        actions.append(
            {
                "_op_type": "create",
                "_index": f"{prefix}{day}",
                "_id": document["event"]["id"],
                "_source": document,
            }
        )
    start = time.monotonic()
    failed = 0
    for ok, _item in helpers.parallel_bulk(
        writer, actions, thread_count=CEILING_THREADS, chunk_size=CEILING_CHUNK, raise_on_error=False
    ):
        failed += 0 if ok else 1
    if failed:
        raise BenchError(f"ceiling run {run_id}: {failed} of {events} documents refused")
    _wait_all(es, run_id, events, timeout_s=600)
    return events / (time.monotonic() - start)


def refresh_interval(es: Elasticsearch) -> str:
    """The day's log index's refresh interval (the template's, unless the index predates it)."""
    index = f"{layout.shipping().index_prefix}{datetime.now(UTC):%Y.%m.%d}"
    try:
        settings = es.indices.get_settings(index=index, name="index.refresh_interval", include_defaults=True)
    except (ApiError, TransportError) as exc:
        return f"unreadable ({exc})"
    for body in settings.values():
        for scope in ("settings", "defaults"):
            value = body.get(scope, {}).get("index", {}).get("refresh_interval")
            if value:
                return str(value)
    return "unknown"


def backlog_drain(
    ctx: RenderContext, es: Elasticsearch, path: Path, outage_s: float, rate: float
) -> tuple[int, float]:
    """Stop the shipper, write ``outage_s`` of events, start it: seconds from the start request until
    the whole backlog is searchable (the shipper's own start-up included)."""
    stack = NativeStack(ctx)
    run_id = f"bench-{uuid.uuid4().hex[:10]}"
    writer = Writer(path, run_id)
    stack.stop("rsyslog")
    try:
        writer.write(rate, outage_s)
    finally:
        restarted = time.monotonic()
        stack.start("rsyslog")
    _wait_all(es, run_id, writer.count, timeout_s=600)
    return writer.count, time.monotonic() - restarted


def run(
    ctx: RenderContext,
    step_duration_s: float = 20.0,
    backlog_outage_s: float = 60.0,
    max_rate_events: int = 200_000,
    progress: Callable[[str], Any] = print,
) -> Report:
    path = ctx.services_log_dir / "bench-0.log"
    if not ctx.services_log_dir.is_dir():
        raise BenchError(f"{ctx.services_log_dir} does not exist: bring the stack up first (testbed up)")
    report = Report(
        machine=f"{platform.node()} ({platform.machine()}, {_cpus()} CPUs)", load_before=os.getloadavg()[0]
    )
    with clients.reader(ctx) as es, clients.writer(ctx) as writer:
        for rate in (LATENCY_GOAL_RATE, 2000.0):
            progress(f"latency at {rate:.0f} events/s for {step_duration_s:.0f} s…")
            report.steps.append(latency_step(es, path, rate, step_duration_s))
        with clients.superuser(ctx) as admin:  # index settings: a privilege the reader lacks
            report.refresh_interval = refresh_interval(admin)
        # Ceiling, pipeline, ceiling: the mean of the two ceilings brackets a load that drifts meanwhile.
        progress(f"node ceiling: {max_rate_events} documents by a direct bulk client…")
        report.ceiling_per_s.append(ceiling(es, writer, path, max_rate_events))
        progress(f"pipeline: {max_rate_events} events at once…")
        report.max_rate_events, report.max_rate_per_s = max_rate(es, path, max_rate_events)
        progress(f"node ceiling again: {max_rate_events} documents…")
        report.ceiling_per_s.append(ceiling(es, writer, path, max_rate_events))
        progress(f"backlog: shipper stopped for {backlog_outage_s:.0f} s under 500 events/s…")
        report.backlog_outage_s = backlog_outage_s
        report.backlog_events, report.backlog_drain_s = backlog_drain(ctx, es, path, backlog_outage_s, 500.0)
    report.load_after = os.getloadavg()[0]
    # Every event is searchable by now: the synthetic file would otherwise grow with each run.
    path.unlink(missing_ok=True)
    return report


def _cpus() -> int:
    return os.cpu_count() or 0


def write_results(report: Report) -> Path:
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(report.markdown())
    return RESULTS_FILE
