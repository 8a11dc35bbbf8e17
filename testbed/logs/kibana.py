"""Kibana's saved objects (stack/kibana/saved_objects.ndjson): read, checked, imported.

``import_saved_objects`` is what the compose set-up job calls once Kibana answers; the checks
(fields exist in the mapping, queries run on Elasticsearch) are in tests/unit/logs and tests/logs.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from testbed.settings import STACK_DIR

SAVED_OBJECTS = STACK_DIR / "kibana" / "saved_objects.ndjson"


def saved_objects(path: Path = SAVED_OBJECTS) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@dataclass(frozen=True)
class SavedQuery:
    object_id: str
    title: str
    query: str
    language: str
    fields: tuple[str, ...]  # columns, sort fields, aggregation fields


def _search_source(attributes: dict[str, Any]) -> dict[str, Any]:
    raw = attributes.get("kibanaSavedObjectMeta", {}).get("searchSourceJSON", "{}")
    return dict(json.loads(raw))


def saved_queries(objects: list[dict[str, Any]] | None = None) -> list[SavedQuery]:
    """Every saved search and visualization with its query and the fields it shows."""
    found: list[SavedQuery] = []
    for obj in objects if objects is not None else saved_objects():
        if obj["type"] not in ("search", "visualization"):
            continue
        attributes = obj["attributes"]
        query = _search_source(attributes).get("query", {})
        fields = list(attributes.get("columns", [])) + [sort[0] for sort in attributes.get("sort", [])]
        if "visState" in attributes:
            for agg in json.loads(attributes["visState"]).get("aggs", []):
                if "field" in agg.get("params", {}):
                    fields.append(agg["params"]["field"])
        found.append(
            SavedQuery(
                object_id=obj["id"],
                title=attributes["title"],
                query=str(query.get("query", "")),
                language=str(query.get("language", "kuery")),
                fields=tuple(fields),
            )
        )
    return found


def import_saved_objects(
    kibana_url: str, user: str, password: str, ca_cert: Path | None = None
) -> dict[str, Any]:
    """POST the NDJSON to Kibana's import API (overwrite: idempotent); raise with Kibana's reason."""
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_cert) if ca_cert else True
    with httpx.Client(base_url=kibana_url, auth=(user, password), verify=verify, timeout=60) as client:
        response = client.post(
            "/api/saved_objects/_import",
            params={"overwrite": "true"},
            headers={"kbn-xsrf": "testbed"},
            files={"file": (SAVED_OBJECTS.name, SAVED_OBJECTS.read_bytes(), "application/ndjson")},
        )
    if response.status_code != 200 or not response.json().get("success"):
        raise RuntimeError(
            f"Kibana refused the saved objects ({response.status_code}): {response.text[:500]}"
        )
    return dict(response.json())
