"""Reading what the stack saw during a run: Locust's request records, Elasticsearch access logs,
Prometheus' request counter, the alert sink's history and the Chaos Toolkit journal.

Each reader returns plain data for the ``RunRecord``; a signal that cannot be read becomes ``None``
plus a note (the verifier then fails the assertion that needs it, saying why).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from chaos.stack_access import ALERT_SINK_HISTORY_PATH, StackAccess
from testbed.scenario.record import AlertEvent, RequestSample

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
    """Notes when each of this run's access logs first becomes searchable (polled during the run)."""

    def __init__(self, access: StackAccess, run_id: str) -> None:
        self.access = access
        self.run_id = run_id
        self.sightings: dict[str, float] = {}
        self.last_error: str | None = None

    def poll(self, now: float) -> int:
        """Look for new access logs; returns how many have been seen so far."""
        client, base = self.access.elasticsearch(timeout_s=30.0)
        try:
            with client:
                for request_id in self._all_ids(client, base):
                    self.sightings.setdefault(request_id, now)
            self.last_error = None
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            self.last_error = f"Elasticsearch search failed: {exc}"
        return len(self.sightings)

    def _all_ids(self, client: httpx.Client, base: str) -> list[str]:
        found: list[str] = []
        search_after: list[Any] | None = None
        while True:
            body: dict[str, Any] = {
                "query": _run_filter(self.run_id),
                "_source": False,
                "docvalue_fields": [REQUEST_ID_FIELD],
                "sort": [{REQUEST_ID_FIELD: "asc"}],
                "size": PAGE_SIZE,
                "track_total_hits": False,
            }
            if search_after is not None:
                body["search_after"] = search_after
            response = client.post(
                f"{base}/{LOG_INDEX_PATTERN}/_search", json=body, params={"ignore_unavailable": "true"}
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
                client.post(f"{base}/{LOG_INDEX_PATTERN}/_refresh", params={"ignore_unavailable": "true"})
                response = client.post(
                    f"{base}/{LOG_INDEX_PATTERN}/_count",
                    json={"query": _run_filter(self.run_id)},
                    params={"ignore_unavailable": "true"},
                )
                response.raise_for_status()
                return int(response.json()["count"])
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            self.last_error = f"Elasticsearch count failed: {exc}"
            return None


def prometheus_scalar(
    access: StackAccess, query: str, empty_is_zero: bool = False
) -> tuple[float | None, str | None]:
    """An instant query's first value, or (None, why). Before any traffic a counter has no series yet:
    ``empty_is_zero`` reads that as 0."""
    client, base = access.prometheus()
    try:
        with client:
            response = client.get(f"{base}/api/v1/query", params={"query": query})
            response.raise_for_status()
            payload = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        return None, f"Prometheus query {query!r} failed: {exc}"
    result = payload.get("data", {}).get("result", [])
    if not result:
        if empty_is_zero:
            return 0.0, None
        return None, f"Prometheus query {query!r} returned no series: does the metric exist?"
    return float(result[0]["value"][1]), None


def promql_problem(access: StackAccess, query: str) -> str | None:
    """Why ``query`` can never give a count (bad syntax, unknown metric), or None. Unreachable: None."""
    client, base = access.prometheus()
    try:
        with client:
            answer = client.get(f"{base}/api/v1/query", params={"query": query})
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
