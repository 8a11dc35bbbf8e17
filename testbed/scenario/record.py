"""What a scenario run recorded: the verifier's only input, saved as ``record.json`` beside the report.

Keeping the record separate from collection lets the verifier be tested on recorded runs and lets a
run be re-verified offline (``testbed run --reverify results/<run-id>``). Times are Unix epoch seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from testbed.scenario.privacy import PrivacyScan


class RequestSample(BaseModel):
    """One request Locust sent (written by load/locustfile.py, one JSON object per line)."""

    id: str  # the X-Request-ID sent
    flow: str  # browse / order / status
    name: str  # Locust's request name (the route)
    t: float  # start time
    latency_ms: float
    ok: bool
    status: int


class AlertEvent(BaseModel):
    """One notification the alert sink received."""

    name: str
    state: Literal["firing", "resolved"]
    at: float  # when the sink received it
    labels: dict[str, str] = Field(default_factory=dict)


class ActiveAlert(BaseModel):
    """An alert Alertmanager or Prometheus (``ALERTS{alertstate="firing"}``) held active when the runner
    looked: at run start, during the run, or at its end. Catches alerts the sink never re-notifies
    (an alert firing before the run is repeated only after ``repeat_interval``)."""

    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    source: Literal["alertmanager", "prometheus"]
    phase: Literal["start", "during", "end"]
    at: float  # when the runner first saw it in this phase


class LocustOutcome(BaseModel):
    """Locust's own verdict: its exit code and what its CSV files counted."""

    exit_code: int | None = None  # None: never exited by itself (the runner had to stop it)
    requests: int | None = None  # the "Aggregated" row of locust_stats.csv; None: no stats written
    failures: int | None = None
    exceptions: list[str] = Field(default_factory=list)  # one line per locust_exceptions.csv row
    planned_requests: float = 0.0  # rate × users-over-time of the load profile


class RunRecord(BaseModel):
    scenario: str
    run_id: str
    started_at: float  # load start
    ended_at: float  # load end
    fault_window: tuple[float, float] | None = None  # from the chaos journal (method start → rollbacks end)
    chaos_status: str | None = None  # the journal's status ("completed", "failed", "aborted", ...)
    chaos_deviated: bool = False
    requests: list[RequestSample] = Field(default_factory=list)
    # Request id → when the runner first found its access log in Elasticsearch.
    log_sightings: dict[str, float] = Field(default_factory=dict)
    prometheus_request_count: float | None = None  # counter increase over the run
    probe_requests: int = 0  # gateway requests sent by the chaos probes (in Prometheus' count only)
    es_access_log_count: int | None = None  # access logs carrying this run's request ids
    alerts: list[AlertEvent] = Field(default_factory=list)
    active_alerts: list[ActiveAlert] = Field(default_factory=list)
    # "start: alertmanager: <why>": an alert snapshot that could not be read (fails forbidden alerts).
    alert_read_failures: list[str] = Field(default_factory=list)
    locust: LocustOutcome | None = None
    privacy: PrivacyScan | None = None  # the run's log documents scanned for personal data
    notes: list[str] = Field(default_factory=list)  # what could not be collected, and why

    def save(self, path: Path) -> None:
        path.write_text(self.model_dump_json(indent=1))

    @classmethod
    def load(cls, path: Path) -> RunRecord:
        return cls.model_validate_json(path.read_text())
