"""Reading what the stack saw during a run: Locust's request records, Elasticsearch access logs,
Prometheus' request counter, the alert sink's history and the Chaos Toolkit journal.

Each reader returns plain data for the ``RunRecord``; a signal that cannot be read becomes ``None``
plus a note (the verifier then fails the assertion that needs it, saying why).
"""

from __future__ import annotations

import csv
import json
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import httpx

from testbed.access import ALERT_SINK_HISTORY_PATH, StackAccess
from testbed.scenario.record import ActiveAlert, AlertEvent, LocustOutcome, RequestSample
from testbed.scenario.spec import LoadProfile

LOG_INDEX_PATTERN = "logs-testbed-*"
# The gateway's access logs: downstream services log the same request id, so filter on the dataset.
GATEWAY_ACCESS_DATASET = "shop.gateway.access"
REQUEST_ID_FIELD = "http.request.id"
PAGE_SIZE = 5000


def read_requests(request_dir: Path) -> list[RequestSample]:
    """Every request Locust recorded (one JSONL file per Locust process), in time order."""
    samples = [
        RequestSample.model_validate_json(line)
        for path in sorted(request_dir.glob("requests-*.jsonl"))
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    return sorted(samples, key=lambda s: s.t)


def _run_filter(run_id: str) -> dict[str, Any]:
    return {
        "bool": {
            "filter": [
                {"prefix": {REQUEST_ID_FIELD: f"{run_id}-"}},
                {"term": {"event.dataset": GATEWAY_ACCESS_DATASET}},
            ]
        }
    }


class LogWatcher:
    """Notes when each of this run's access logs first becomes searchable (polled every
    ``runner.LOG_POLL_INTERVAL_S`` during the run). A sighting is the send time of the first search
    that found the log: the lag is exact to one poll interval plus one search."""

    # Polls look only at logs stamped in the last RECENT_S (cheap at 2 polls/s, however long the run);
    # a full search every FULL_SCAN_EVERY_S and at the end finds any older straggler (already late).
    RECENT_S = 120.0
    FULL_SCAN_EVERY_S = 15.0

    def __init__(self, access: StackAccess, run_id: str) -> None:
        self.access = access
        self.run_id = run_id
        self.sightings: dict[str, float] = {}
        self.last_error: str | None = None
        self._last_full_scan: float | None = None

    def poll(self, full: bool = False) -> int:
        """Look for new access logs; returns how many have been seen so far."""
        sent = time.time()
        full = full or self._last_full_scan is None or sent - self._last_full_scan >= self.FULL_SCAN_EVERY_S
        client, base = self.access.elasticsearch(timeout_s=30.0)
        try:
            with client:
                for request_id in self._all_ids(client, base, None if full else sent - self.RECENT_S):
                    self.sightings.setdefault(request_id, sent)
            if full:
                self._last_full_scan = sent
            self.last_error = None
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            self.last_error = f"Elasticsearch search failed: {exc}"
        return len(self.sightings)

    def _all_ids(self, client: httpx.Client, base: str, since: float | None) -> list[str]:
        found: list[str] = []
        search_after: list[Any] | None = None
        query = _run_filter(self.run_id)
        if since is not None:
            query["bool"]["filter"].append(
                {"range": {"@timestamp": {"gte": int(since * 1000), "format": "epoch_millis"}}}
            )
        while True:
            body: dict[str, Any] = {
                "query": query,
                "_source": False,
                "docvalue_fields": [REQUEST_ID_FIELD],
                "sort": [{REQUEST_ID_FIELD: "asc"}],
                "size": PAGE_SIZE,
                "track_total_hits": False,
            }
            if search_after is not None:
                body["search_after"] = search_after
            # No ignore_unavailable / allow_no_indices: a missing log index is an error, not "0 logs".
            response = client.post(
                f"{base}/{LOG_INDEX_PATTERN}/_search", json=body, params={"allow_no_indices": "false"}
            )
            response.raise_for_status()
            hits = response.json()["hits"]["hits"]
            found += [hit["fields"][REQUEST_ID_FIELD][0] for hit in hits]
            if len(hits) < PAGE_SIZE:
                return found
            search_after = hits[-1]["sort"]

    def count(self) -> int | None:
        """Access logs of this run in Elasticsearch (duplicates included: a duplicate is a shipping bug)."""
        client, base = self.access.elasticsearch(timeout_s=30.0)
        try:
            with client:
                no_index_is_error = {"allow_no_indices": "false"}
                client.post(f"{base}/{LOG_INDEX_PATTERN}/_refresh", params=no_index_is_error)
                response = client.post(
                    f"{base}/{LOG_INDEX_PATTERN}/_count",
                    json={"query": _run_filter(self.run_id)},
                    params=no_index_is_error,
                )
                response.raise_for_status()
                return int(response.json()["count"])
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            self.last_error = f"Elasticsearch count failed: {exc}"
            return None


def counter_increase(
    access: StackAccess, selector: str, start: float, end: float
) -> tuple[float | None, str | None]:
    """How much the counters matched by ``selector`` grew between ``start`` and ``end`` (epoch s), or
    (None, why). Fails closed: a selector matching no series is an error, never 0.

    The semantics of PromQL's ``increase()`` (a drop is a counter reset: the new value counts from 0;
    a series born inside the window counts from 0, so a restarted instance or a new route/status
    label loses nothing), computed from the raw samples without ``increase()``'s extrapolation to
    the window edges, which adds up to a scrape interval's worth of traffic (a 5-s scrape over a
    30-s run: ~15 %, far above the 2 % tolerance).
    """
    # One instant query of a range vector returns every raw sample in the window, per series.
    lookback_s = 120  # the last sample before the load started is each series' baseline
    window_s = max(1, int(end - start) + lookback_s + 1)
    client, base = access.prometheus(timeout_s=30.0)
    query = f"{selector}[{window_s}s]"
    try:
        with client:
            response = client.get(f"{base}/api/v1/query", params={"query": query, "time": f"{end:.3f}"})
            response.raise_for_status()
            payload = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        return None, f"Prometheus query {query!r} failed: {exc}"
    series = payload.get("data", {}).get("result", [])
    if not series:
        return None, f"Prometheus query {query!r} returned no series: does the metric exist?"
    return sum(
        increase_of([(float(t), float(v)) for t, v in one.get("values", [])], start) for one in series
    ), None


def increase_of(samples: list[tuple[float, float]], start: float) -> float:
    """One counter's growth after ``start`` from its raw (time, value) samples in time order. The last
    sample at or before ``start`` is the baseline (none: the series was born in the run, from 0); a
    drop is a reset, after which the new value is all new."""
    before = [value for t, value in samples if t <= start]
    previous = before[-1] if before else 0.0
    total = 0.0
    for _, value in (sample for sample in samples if sample[0] > start):
        total += value - previous if value >= previous else value
        previous = value
    return total


def promql_problem(access: StackAccess, query: str) -> str | None:
    """Why the selector ``query`` can never give a count (bad syntax, not a series selector, unknown
    metric), or None. Unreachable: None (reported later as "not collected", with the reason)."""
    client, base = access.prometheus()
    try:
        with client:
            answer = client.get(f"{base}/api/v1/query", params={"query": f"{query}[1m]"})
            if answer.status_code == 400:
                return f"PromQL rejected: {answer.json().get('error', answer.text[:200])}"
            names = client.get(f"{base}/api/v1/label/__name__/values").json().get("data", [])
    except (httpx.HTTPError, ValueError):
        return None  # reported later as "not collected", with the reason
    wanted = set(re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{", query))
    unknown = sorted(wanted - set(names))
    return f"no metric named {', '.join(unknown)} in Prometheus" if unknown else None


def read_alerts(access: StackAccess, since: float) -> tuple[list[AlertEvent], str | None]:
    """Notifications the alert sink received since ``since`` (epoch seconds)."""
    url = access.service_url("alert_sink") + ALERT_SINK_HISTORY_PATH
    try:
        response = httpx.get(url, params={"since": f"{since:.3f}"}, timeout=15.0)
        response.raise_for_status()
        entries = response.json()["alerts"]
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        return [], f"alert sink history unavailable at {url}: {exc}"
    events = [
        AlertEvent(
            name=entry["name"],
            state=entry["state"],
            at=datetime.fromisoformat(entry["received_at"]).timestamp(),
            labels=entry.get("labels") or {},
        )
        for entry in entries
    ]
    return sorted(events, key=lambda e: e.at), None


def _active(
    labels: dict[str, str],
    source: Literal["alertmanager", "prometheus"],
    phase: Literal["start", "during", "end"],
    now: float,
) -> ActiveAlert:
    return ActiveAlert(name=labels.get("alertname", "?"), labels=labels, source=source, phase=phase, at=now)


def active_alerts(
    access: StackAccess, phase: Literal["start", "during", "end"], now: float
) -> tuple[list[ActiveAlert], list[str]]:
    """Every alert active right now in Alertmanager (``/api/v2/alerts``, silenced and inhibited ones
    included: they still fire) and in Prometheus (``ALERTS{alertstate="firing"}``), plus why a source
    could not be read. An empty ``ALERTS`` answer means none is firing (the series exists only while
    an alert is active), unlike a counter, whose absence is an error."""
    found: list[ActiveAlert] = []
    problems: list[str] = []
    client, base = access.alertmanager(timeout_s=10.0)
    try:
        with client:
            response = client.get(f"{base}/api/v2/alerts", params={"active": "true"})
            response.raise_for_status()
            for alert in response.json():
                labels = {str(k): str(v) for k, v in (alert.get("labels") or {}).items()}
                found.append(_active(labels, "alertmanager", phase, now))
    except (httpx.HTTPError, ValueError, TypeError, AttributeError) as exc:
        problems.append(f"{phase}: Alertmanager alerts unavailable: {exc}")
    client, base = access.prometheus(timeout_s=10.0)
    try:
        with client:
            response = client.get(f"{base}/api/v1/query", params={"query": 'ALERTS{alertstate="firing"}'})
            response.raise_for_status()
            for series in response.json()["data"]["result"]:
                labels = {str(k): str(v) for k, v in series["metric"].items() if k != "__name__"}
                found.append(_active(labels, "prometheus", phase, now))
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        problems.append(f"{phase}: Prometheus ALERTS unavailable: {exc}")
    return found, problems


def merge_active(known: list[ActiveAlert], new: list[ActiveAlert]) -> None:
    """Adds ``new`` sightings to ``known``, keeping the first sighting per alert, source and phase."""
    seen = {(a.name, tuple(sorted(a.labels.items())), a.source, a.phase) for a in known}
    for alert in new:
        key = (alert.name, tuple(sorted(alert.labels.items())), alert.source, alert.phase)
        if key not in seen:
            seen.add(key)
            known.append(alert)


def planned_requests(profile: LoadProfile) -> float:
    """Requests the profile plans: its rate per user × users over time (``users_at``), 1-s steps."""
    if profile.rate is None:
        return 0.0
    per_user = profile.rate / profile.users
    return sum(profile.users_at(second + 0.5) * per_user for second in range(profile.duration_s))


def _csv_rows(path: Path) -> list[dict[str, str]] | None:
    if not path.is_file():
        return None
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def read_locust(run_dir: Path, exit_code: int | None, profile: LoadProfile) -> LocustOutcome:
    """Locust's own verdict from its exit code and its CSV files (``--csv <run_dir>/locust``)."""
    stats = _csv_rows(run_dir / "locust_stats.csv")
    aggregated = next((row for row in stats or [] if row.get("Name") == "Aggregated"), None)
    exceptions = _csv_rows(run_dir / "locust_exceptions.csv") or []
    failures = _csv_rows(run_dir / "locust_failures.csv")
    return LocustOutcome(
        exit_code=exit_code,
        requests=int(aggregated["Request Count"]) if aggregated else None,
        failures=(
            sum(int(row.get("Occurrences") or 0) for row in failures) if failures is not None else None
        ),
        exceptions=[
            f"{row.get('Count', '?')}× {row.get('Message', '')} ({row.get('Nodes', '')})".strip()
            for row in exceptions
        ],
        planned_requests=planned_requests(profile),
    )


def probe_requests_sent(path: Path) -> int:
    """Gateway requests the experiment's own probes sent (Prometheus counts them, Locust does not)."""
    if not path.is_file():
        return 0
    journal = json.loads(path.read_text())
    states = journal.get("steady_states") or {}
    entries = [
        *journal.get("run", []),
        *[probe for phase in ("before", "after") for probe in (states.get(phase) or {}).get("probes", [])],
    ]
    total = 0
    for entry in entries:
        provider = entry.get("activity", {}).get("provider", {})
        if provider.get("func") == "gateway_success_ratio" and entry.get("status") == "succeeded":
            total += int(provider.get("arguments", {}).get("requests", 10))
    return total


def read_journal(path: Path) -> tuple[str | None, bool, tuple[float, float] | None]:
    """(status, deviated, fault window) from a Chaos Toolkit journal: never trust ``chaos run``'s exit code.

    The fault window runs from the first method activity's start to the last one's end (pauses after
    an activity are not part of its end, so a "restart" action closes the window).
    """
    if not path.is_file():
        return None, False, None
    journal = json.loads(path.read_text())
    runs = [r for r in journal.get("run", []) if r.get("start") and r.get("end")]
    window = None
    if runs:
        start = min(datetime.fromisoformat(r["start"]).timestamp() for r in runs)
        end = max(datetime.fromisoformat(r["end"]).timestamp() for r in runs)
        window = (start, end)
    return journal.get("status"), bool(journal.get("deviated")), window
