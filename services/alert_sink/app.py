"""Alert sink: ``POST /webhook`` takes Alertmanager's webhook (payload version 4), ``GET /alerts`` answers.

The webhook requires HTTP basic auth (user ``alertmanager``, password ``SHOP_WEBHOOK_PASSWORD``), which
Alertmanager sends through its receivers' ``http_config``: nobody else can forge alert history.

Each alert of a notification becomes one history entry (firing or resolved, with its timestamps), kept
in memory and appended to a JSONL file read back at start, so a restart keeps the history. Each entry is
also logged as ECS JSON, so alerts reach Elasticsearch with the other logs.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.common import metrics
from services.common.app import ReadinessCheck, service_app
from services.common.openapi import Operation, openapi_document
from services.common.problems import ProblemError, problem_response
from services.common.request_body import JsonInt, read_model
from services.common.settings import ServiceSettings

VERSION = "1.0.0"
logger = logging.getLogger("shop.alerts")
AlertState = Literal["firing", "resolved"]
# Seconds since the epoch, as ``since`` takes them (10 digits reach the year 2286).
SINCE_EPOCH_PATTERN = r"^[0-9]{1,10}(\.[0-9]{1,6})?$"


class AlertSinkSettings(ServiceSettings):
    history_file: Path
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)  # a group of many alerts is large
    # Required: the sink does not start without the credential its webhook checks.
    webhook_password: SecretStr = Field(min_length=1)


WEBHOOK_USER = "alertmanager"


class WebhookAlert(BaseModel):
    """One alert of Alertmanager's webhook payload (strict: what its schema forbids is refused)."""

    model_config = ConfigDict(extra="allow", strict=True)

    status: AlertState
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime | None = Field(default=None, alias="endsAt")
    generator_url: str = Field(default="", alias="generatorURL")
    fingerprint: str = ""


class WebhookPayload(BaseModel):
    """Alertmanager's webhook body, version 4 (by its JSON names only: the schema's)."""

    model_config = ConfigDict(extra="allow", strict=True)

    version: Literal["4"]
    group_key: str = Field(alias="groupKey")
    truncated_alerts: JsonInt = Field(default=0, alias="truncatedAlerts")
    status: AlertState
    receiver: str
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field(default="", alias="externalURL")
    alerts: list[WebhookAlert]


class AlertRecord(BaseModel):
    """One alert as received: the history's unit."""

    name: str
    state: AlertState
    received_at: datetime
    starts_at: datetime
    ends_at: datetime | None
    fingerprint: str
    severity: str | None
    labels: dict[str, str]
    annotations: dict[str, str]
    receiver: str
    group_key: str


class AlertHistory(BaseModel):
    alerts: list[AlertRecord]


class Accepted(BaseModel):
    received: int


OPERATIONS = (
    Operation(
        "POST",
        "/webhook",
        "Alertmanager webhook receiver (payload version 4)",
        {200: Accepted, 400: None, 401: None, 413: None, 422: None},
        request=WebhookPayload,
        basic_auth=True,
    ),
    Operation(
        "GET",
        "/alerts",
        "Alert history, oldest first; filters: name, state, since (RFC 3339 or epoch s)",
        {200: AlertHistory, 400: None},
        query={
            "name": {"type": "string"},
            "state": {"enum": ["firing", "resolved"]},
            "since": {
                "anyOf": [
                    {"type": "string", "format": "date-time"},
                    {"type": "string", "pattern": SINCE_EPOCH_PATTERN},
                ]
            },
        },
    ),
)


def openapi() -> dict[str, Any]:
    return openapi_document("alert_sink", VERSION, OPERATIONS)


class AlertStore:
    """In-memory history backed by an append-only JSONL file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: list[AlertRecord] = []
        self._lock = asyncio.Lock()

    def load(self) -> None:
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    self.records.append(AlertRecord.model_validate_json(line))
                except ValidationError:
                    # A torn last line after a crash must not stop the sink.
                    logger.warning("skipping unreadable history line %d of %s", number, self.path)

    async def append(self, records: list[AlertRecord]) -> None:
        async with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as out:
                out.writelines(record.model_dump_json() + "\n" for record in records)
            self.records.extend(records)

    def query(self, name: str | None, state: str | None, since: datetime | None) -> list[AlertRecord]:
        return [
            r
            for r in self.records
            if (name is None or r.name == name)
            and (state is None or r.state == state)
            and (since is None or r.received_at >= since)
        ]


def parse_since(raw: str | None) -> datetime | None:
    if raw is None:
        return None
    if re.fullmatch(SINCE_EPOCH_PATTERN, raw):
        return datetime.fromtimestamp(float(raw), tz=UTC)
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ProblemError(
            400, "Invalid since", "since must be RFC 3339 or seconds since the epoch"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def create_app(settings: AlertSinkSettings) -> Starlette:
    store = AlertStore(settings.history_file)
    store.load()
    received = {
        state: metrics.alerts_received.labels(settings.service_name, state)
        for state in ("firing", "resolved")
    }

    expected = f"{WEBHOOK_USER}:{settings.webhook_password.get_secret_value()}".encode()

    def authorized(request: Request) -> bool:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            given = base64.b64decode(credentials, validate=True)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(given, expected)

    async def webhook(request: Request) -> Response:
        if not authorized(request):
            return problem_response(
                401,
                "Unauthorized",
                f"basic auth as {WEBHOOK_USER} required (Alertmanager's http_config)",
                headers={"WWW-Authenticate": 'Basic realm="alert_sink"'},
            )
        payload = await read_model(request, WebhookPayload, settings.max_body_bytes)
        now = datetime.now(UTC)
        records = [
            AlertRecord(
                name=alert.labels.get("alertname", "unnamed"),
                state=alert.status,
                received_at=now,
                starts_at=alert.starts_at,
                ends_at=alert.ends_at if alert.status == "resolved" else None,
                fingerprint=alert.fingerprint,
                severity=alert.labels.get("severity"),
                labels=alert.labels,
                annotations=alert.annotations,
                receiver=payload.receiver,
                group_key=payload.group_key,
            )
            for alert in payload.alerts
        ]
        await store.append(records)
        for record in records:
            received[record.state].inc()
            logger.log(
                logging.WARNING if record.state == "firing" else logging.INFO,
                "alert %s %s: %s",
                record.name,
                record.state,
                record.annotations.get("summary", ""),
                extra={
                    "event.kind": "alert",
                    "event.action": f"alert-{record.state}",
                    "rule.name": record.name,
                    "alert.severity": record.severity,
                    "alert.fingerprint": record.fingerprint,
                    "alert.labels": record.labels,
                    "alert.starts_at": record.starts_at.isoformat(),
                    "alert.ends_at": record.ends_at.isoformat() if record.ends_at else None,
                    "alert.receiver": record.receiver,
                },
            )
        return JSONResponse(Accepted(received=len(records)).model_dump())

    async def alerts(request: Request) -> Response:
        state = request.query_params.get("state")
        if state not in (None, "firing", "resolved"):
            raise ProblemError(400, "Invalid state", "state must be firing or resolved")
        found = store.query(
            request.query_params.get("name"), state, parse_since(request.query_params.get("since"))
        )
        return JSONResponse(AlertHistory(alerts=found).model_dump(mode="json"))

    def readiness(_app: Starlette) -> dict[str, ReadinessCheck]:
        async def history_writable() -> bool:
            directory = settings.history_file.parent
            directory.mkdir(parents=True, exist_ok=True)
            return directory.is_dir()

        return {"history_file": history_writable}

    routes = [Route("/webhook", webhook, methods=["POST"]), Route("/alerts", alerts, methods=["GET"])]
    return service_app(settings, routes, openapi=openapi(), readiness=readiness)
