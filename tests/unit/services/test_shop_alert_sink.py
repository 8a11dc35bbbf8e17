"""The alert sink: Alertmanager v4 webhooks in, history out, kept across a restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from services.alert_sink.app import AlertSinkSettings, create_app


def _payload(status: str, name: str = "TargetDown", severity: str = "critical") -> dict:
    alert = {
        "status": status,
        "labels": {"alertname": name, "severity": severity, "job": "inventory"},
        "annotations": {"summary": f"{name} on inventory", "description": "d", "runbook": "r"},
        "startsAt": "2026-11-30T07:00:00Z",
        "endsAt": "2026-11-30T07:05:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "https://127.0.0.1:19090/graph",
        "fingerprint": "abc123",
    }
    return {
        "version": "4",
        "groupKey": '{}:{alertname="' + name + '"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "sink-critical",
        "groupLabels": {"alertname": name},
        "commonLabels": alert["labels"],
        "commonAnnotations": alert["annotations"],
        "externalURL": "https://127.0.0.1:19093",
        "alerts": [alert],
    }


WEBHOOK_PASSWORD = "webhook-secret"


def _app(history: Path) -> httpx.AsyncClient:
    settings = AlertSinkSettings(
        service_name="alert_sink", port=1, history_file=history, webhook_password=SecretStr(WEBHOOK_PASSWORD)
    )  # type: ignore[call-arg]
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(settings)),
        base_url="http://sink",
        auth=("alertmanager", WEBHOOK_PASSWORD),
    )


@pytest.fixture
async def sink(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with _app(tmp_path / "alerts.jsonl") as client:
        yield client


async def test_firing_then_resolved_is_kept_in_order(sink: httpx.AsyncClient):
    assert (await sink.post("/webhook", json=_payload("firing"))).json() == {"received": 1}
    assert (await sink.post("/webhook", json=_payload("resolved"))).status_code == 200
    history = (await sink.get("/alerts", params={"name": "TargetDown"})).json()["alerts"]
    assert [a["state"] for a in history] == ["firing", "resolved"]
    assert history[0]["severity"] == "critical" and history[0]["ends_at"] is None
    assert history[1]["ends_at"].startswith("2026-11-30T07:05:00")
    assert history[0]["annotations"]["summary"] == "TargetDown on inventory"


async def test_filters_by_name_state_and_since(sink: httpx.AsyncClient):
    await sink.post("/webhook", json=_payload("firing", name="ErrorBudgetBurnFast"))
    await asyncio.sleep(
        0.01
    )  # received_at has sub-millisecond precision: keep both sides of the cutoff apart
    cutoff = time.time()
    await asyncio.sleep(0.01)
    await sink.post("/webhook", json=_payload("firing", name="TargetDown"))
    await sink.post("/webhook", json=_payload("resolved", name="TargetDown"))
    only_firing = (await sink.get("/alerts", params={"state": "firing"})).json()["alerts"]
    assert {a["name"] for a in only_firing} == {"ErrorBudgetBurnFast", "TargetDown"}
    recent = (await sink.get("/alerts", params={"since": f"{cutoff:.3f}"})).json()["alerts"]
    assert [a["name"] for a in recent] == ["TargetDown", "TargetDown"]
    rfc3339 = (await sink.get("/alerts", params={"since": "2000-01-01T00:00:00Z"})).json()["alerts"]
    assert len(rfc3339) == 3


async def test_history_survives_a_restart(tmp_path: Path):
    history = tmp_path / "alerts.jsonl"
    async with _app(history) as first:
        await first.post("/webhook", json=_payload("firing"))
    with history.open("a") as torn:
        torn.write('{"name": "Torn')  # a crash mid-line must not stop the next start
    async with _app(history) as second:
        alerts = (await second.get("/alerts")).json()["alerts"]
    assert [a["name"] for a in alerts] == ["TargetDown"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b'{"version": "3", "alerts": []}', 422),
        (b'{"version": "4", "groupKey": "g", "status": "firing", "receiver": "r", "alerts": "x"}', 422),
    ],
)
async def test_bad_webhooks_are_problems(sink: httpx.AsyncClient, body: bytes, status: int):
    answer = await sink.post("/webhook", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    assert "Traceback" not in answer.text


async def test_oversize_body_is_413(sink: httpx.AsyncClient):
    answer = await sink.post("/webhook", content=b"x" * (2 * 1024 * 1024))
    assert answer.status_code == 413


async def test_bad_query_is_400(sink: httpx.AsyncClient):
    assert (await sink.get("/alerts", params={"since": "yesterday"})).status_code == 400
    assert (await sink.get("/alerts", params={"state": "pending"})).status_code == 400


@pytest.mark.parametrize(
    "auth", [None, ("alertmanager", "wrong"), ("someone", WEBHOOK_PASSWORD)], ids=["none", "password", "user"]
)
async def test_webhook_refuses_a_caller_without_alertmanagers_credential(
    sink: httpx.AsyncClient, auth: tuple[str, str] | None
):
    headers = {} if auth is None else {"authorization": httpx.BasicAuth(*auth)._auth_header}
    answer = await sink.post("/webhook", json=_payload("firing"), auth=None, headers=headers)  # type: ignore[arg-type]
    assert answer.status_code == 401 and answer.headers["www-authenticate"].startswith("Basic")
    assert (await sink.get("/alerts")).json()["alerts"] == [], "a refused alert must not enter the history"


def test_sink_does_not_start_without_its_webhook_password(tmp_path: Path):
    with pytest.raises(ValidationError, match="webhook_password"):
        AlertSinkSettings(service_name="alert_sink", port=1, history_file=tmp_path / "a.jsonl")  # type: ignore[call-arg]
