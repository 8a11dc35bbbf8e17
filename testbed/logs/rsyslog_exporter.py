"""rsyslog's own numbers as Prometheus metrics: run by rsyslog (omprog), reads impstats JSON lines on
stdin, serves ``/metrics`` on the ``rsyslog_stats`` port. Metric names: stack/rsyslog/README.md.

It lives and dies with rsyslogd (stdin closes), so a down target also means a down shipper.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from prometheus_client import start_http_server
from prometheus_client.core import REGISTRY, CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# impstats counters per origin -> (metric name, help). Counters only grow (resetCounters="off").
ACTION_COUNTERS = {
    "processed": ("rsyslog_action_processed_total", "Messages an action processed."),
    "failed": ("rsyslog_action_failed_total", "Messages an action failed to process (retried if suspended)."),
    "suspended": ("rsyslog_action_suspended_total", "Times an action was suspended (its target down)."),
    "resumed": ("rsyslog_action_resumed_total", "Times a suspended action resumed."),
}
QUEUE_GAUGES = {"size": ("rsyslog_queue_size", "Messages in a queue now (memory and disk).")}
QUEUE_COUNTERS = {
    "enqueued": ("rsyslog_queue_enqueued_total", "Messages enqueued."),
    "full": ("rsyslog_queue_full_total", "Times a queue was full."),
    "discarded.full": ("rsyslog_queue_discarded_full_total", "Messages discarded because a queue was full."),
    "discarded.nf": ("rsyslog_queue_discarded_nf_total", "Messages discarded at the queue's discard mark."),
}
ES_COUNTERS = {
    "submitted": "Documents submitted to Elasticsearch.",
    "failed.http": "Bulk requests that failed at the HTTP level.",
    "failed.httprequests": "HTTP requests that failed.",
    "failed.checkConn": "Failed connection checks (Elasticsearch unreachable).",
    "failed.es": "Bulk requests Elasticsearch answered with errors.",
    "response.success": "Bulk items Elasticsearch accepted.",
    "response.bad": "Bulk items with a malformed response.",
    "response.duplicate": "Bulk items that already existed (409 on create: a replay, not a loss).",
    "response.badargument": "Bulk items Elasticsearch refused as bad arguments (mapping errors).",
    "response.bulkrejection": "Bulk items Elasticsearch rejected for load (429).",
    "response.other": "Bulk items failing for another reason.",
}
IMFILE_COUNTERS = {"submitted": ("rsyslog_imfile_submitted_total", "Lines read from log files.")}


def _metric_name(key: str) -> str:
    return "rsyslog_omelasticsearch_" + re.sub(r"[^a-zA-Z0-9]+", "_", key) + "_total"


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as fh:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
    except FileNotFoundError:
        return 0


class RsyslogCollector(Collector):
    def __init__(self, rejected_file: Path, error_file: Path) -> None:
        self.rejected_file = rejected_file
        self.error_file = error_file
        self._lock = threading.Lock()
        # (origin kind, name) -> the latest impstats object
        self._latest: dict[tuple[str, str], dict[str, object]] = {}

    def update(self, line: str) -> None:
        try:
            stats = json.loads(line[line.index("{") :])
        except ValueError:
            return
        origin = str(stats.get("origin", ""))
        with self._lock:
            self._latest[(origin, str(stats.get("name", "")))] = stats

    def _objects(self, origin: str) -> Iterator[tuple[str, dict[str, object]]]:
        with self._lock:
            items = list(self._latest.items())
        for (kind, name), stats in items:
            if kind == origin:
                yield name, stats

    def collect(self) -> Iterable[Metric]:
        for key, (name, help_text) in ACTION_COUNTERS.items():
            family = CounterMetricFamily(name, help_text, labels=["action"])
            for action, stats in self._objects("core.action"):
                if key in stats:
                    family.add_metric([action.removeprefix("action-")], float(str(stats[key])))
            yield family
        queue_families: list[CounterMetricFamily | GaugeMetricFamily] = [
            GaugeMetricFamily(name, help_text, labels=["queue"]) for name, help_text in QUEUE_GAUGES.values()
        ]
        queue_families += [
            CounterMetricFamily(name, help_text, labels=["queue"])
            for name, help_text in QUEUE_COUNTERS.values()
        ]
        keys = list(QUEUE_GAUGES) + list(QUEUE_COUNTERS)
        for queue, stats in self._objects("core.queue"):
            for key, queue_family in zip(keys, queue_families, strict=True):
                if key in stats:
                    queue_family.add_metric([queue], float(str(stats[key])))
        yield from queue_families
        for key, help_text in ES_COUNTERS.items():
            family = CounterMetricFamily(_metric_name(key), help_text)
            for _name, stats in self._objects("omelasticsearch"):
                if key in stats:
                    family.add_metric([], float(str(stats[key])))
            yield family
        for key, (name, help_text) in IMFILE_COUNTERS.items():
            family = CounterMetricFamily(name, help_text, labels=["file"])
            for file_name, stats in self._objects("imfile"):
                if key in stats:
                    family.add_metric([file_name], float(str(stats[key])))
            yield family
        yield CounterMetricFamily(
            "rsyslog_es_rejected_documents_total",
            "Documents Elasticsearch refused for good (written to the rejected file).",
            value=_count_lines(self.rejected_file),
        )
        yield CounterMetricFamily(
            "rsyslog_es_errorfile_records_total",
            "Records omelasticsearch wrote to its error file (failed bulk requests, incl. retried ones).",
            value=_count_lines(self.error_file),
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", required=True, help="host:port of /metrics")
    parser.add_argument("--rejected-file", type=Path, required=True)
    parser.add_argument("--error-file", type=Path, required=True)
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    collector = RsyslogCollector(args.rejected_file, args.error_file)
    REGISTRY.register(collector)
    start_http_server(int(port), addr=host)
    for line in sys.stdin:
        collector.update(line)


if __name__ == "__main__":
    main()
