"""``testbed bench logs``: figures of the native log pipeline (file → rsyslog → Elasticsearch).

Synthetic events in the services' own ECS format are appended to ``<services_log_dir>/bench-0.log`` at
a controlled rate (the services cannot emit 2,000+ events/s on this machine; the pipeline is what is
measured). Every 10th event is a probe, polled for in Elasticsearch every 100 ms: its latency is the
time from being written to being searchable.
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

from elasticsearch import ApiError, Elasticsearch, TransportError

from testbed.context import RenderContext
from testbed.logs import clients, layout
from testbed.native.control import NativeStack
from testbed.settings import REPO_ROOT

RESULTS_FILE = REPO_ROOT / "bench" / "RESULTS-logs.md"
PROBE_EVERY = 10
DATASET = "bench.logs"


class BenchError(RuntimeError):
    pass


def _event(run_id: str, sequence: int) -> str:
    return json.dumps(
        {
            "@timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "log": {"level": "info", "logger": "bench"},
            "ecs.version": "1.6.0",
            "service": {"name": "bench", "node": {"name": "bench-0"}},
            "event": {"id": f"{run_id}-{sequence}", "dataset": DATASET, "sequence": sequence},
            "transaction": {"id": f"{run_id}-{sequence}"},
            "labels": {"bench_run": run_id, "probe": "yes" if sequence % PROBE_EVERY == 0 else "no"},
            "message": f"bench event {sequence} of run {run_id}",
        },
        separators=(",", ":"),
    )


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
    backlog_events: int = 0
    backlog_outage_s: float = 0.0
    backlog_drain_s: float = 0.0
    machine: str = ""
    load_before: float = 0.0
    load_after: float = 0.0

    def markdown(self) -> str:
        goal = layout.shipping().searchable_within_s
        lines = [
            "# Log pipeline figures (native: files → rsyslog → Elasticsearch)",
            "",
            f"Measured by `testbed bench logs` on {self.machine}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC,",
            "with the rest of the native stack running. Latency = written to the file → searchable.",
            f"Load average (1 min): {self.load_before:.1f} before, {self.load_after:.1f} after; the CPUs are",
            "shared with every other process on the machine, so the figures vary with its load.",
            "",
            "| rate (events/s) | events | probes | p50 (s) | p99 (s) | max (s) | goal p99 |",
            "|---:|---:|---:|---:|---:|---:|---|",
        ]
        for step in self.steps:
            verdict = "met" if step.p99_s <= goal else "MISSED"
            lines.append(
                f"| {step.rate:.0f} | {step.events} | {step.probes} | {step.p50_s:.2f} | {step.p99_s:.2f} "
                f"| {step.max_s:.2f} | ≤ {goal:.0f} s: {verdict} |"
            )
        lines += [
            "",
            f"- Maximum throughput: {self.max_rate_events} events written at once, all searchable (0 lost, "
            f"0 duplicated) at **{self.max_rate_per_s:,.0f} events/s** (goal ≥ 10,000/s: "
            f"{'met' if self.max_rate_per_s >= 10_000 else 'MISSED'}).",
            f"- Backlog: the shipper stopped for {self.backlog_outage_s:.0f} s while "
            f"{self.backlog_events} events were written; after its restart the backlog was searchable "
            f"in **{self.backlog_drain_s:.1f} s** (0 lost, 0 duplicated).",
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
    """Write ``events`` as fast as Python can; events/s until the last one is searchable."""
    run_id = f"bench-{uuid.uuid4().hex[:10]}"
    start = time.monotonic()
    with path.open("a", encoding="utf-8") as fh:
        for chunk_start in range(0, events, 1000):
            fh.write(
                "\n".join(_event(run_id, i) for i in range(chunk_start, min(events, chunk_start + 1000)))
                + "\n"
            )
    _wait_all(es, run_id, events, timeout_s=600)
    return events, events / (time.monotonic() - start)


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
    with clients.reader(ctx) as es:
        for rate in (500.0, 2000.0):
            progress(f"latency at {rate:.0f} events/s for {step_duration_s:.0f} s…")
            report.steps.append(latency_step(es, path, rate, step_duration_s))
        progress(f"maximum rate: {max_rate_events} events at once…")
        report.max_rate_events, report.max_rate_per_s = max_rate(es, path, max_rate_events)
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
