"""The "no personal data in Elasticsearch" assertion: every log document of the run (any service, any
field) is read back from Elasticsearch and searched for e-mail addresses and card numbers.

The load profile (load/locustfile.py) sends, once per run, an order carrying an e-mail address and a
product lookup whose path is a card number, so the check always has personal data to find if any
service logs it unredacted. The patterns here are written independently of the services' redaction
(services/common/redaction.py): a check must not reuse the code it checks.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
from pydantic import BaseModel, Field

from testbed.access import StackAccess

LOG_INDEX_PATTERN = "logs-testbed-*"
RUN_FIELD = "transaction.id"  # every service stamps the request id of the request it serves
PAGE_SIZE = 2000
# What load/locustfile.py sends once per run (kept here too: the check's expectation is written down).
CANARY_EMAIL = "jane.doe@example.com"
CANARY_CARD = "4111111111111111"

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# 13-19 digits in one run, or four groups of four split by spaces or dashes; never inside a longer
# token (hex ids, UUIDs, request ids).
_CARD = re.compile(r"(?<![0-9A-Za-z-])(?:\d{13,19}|\d{4}(?:[ -]\d{4}){3})(?![0-9A-Za-z]|-[0-9A-Za-z])")


class PrivacyScan(BaseModel):
    """What the scan of one run's log documents found."""

    documents: int  # log documents of the run read back
    findings: list[str] = Field(default_factory=list)  # "<dataset> <field>: <masked value>"
    error: str | None = None  # the scan could not be done (then the assertion fails: unknown ≠ clean)


def _luhn(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _mask(value: str) -> str:
    return value[:3] + "…" + value[-2:]


def personal_data(value: str) -> list[str]:
    """E-mail addresses and Luhn-valid card numbers in one string."""
    found = [m.group(0) for m in _EMAIL.finditer(value)]
    for match in _CARD.finditer(value):
        digits = re.sub(r"[ -]", "", match.group(0))
        if _luhn(digits):
            found.append(match.group(0))
    return found


def _strings(value: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [item for key, child in value.items() for item in _strings(child, f"{path}.{key}".lstrip("."))]
    if isinstance(value, list):
        return [item for child in value for item in _strings(child, path)]
    return []


def findings_in(document: dict[str, Any]) -> list[str]:
    dataset = str((document.get("event") or {}).get("dataset", "?"))
    return [
        f"{dataset} {field}: {_mask(found)}"
        for field, text in _strings(document)
        for found in personal_data(text)
    ]


def scan(access: StackAccess, run_id: str) -> PrivacyScan:
    """Read back every log document carrying one of the run's request ids and look for personal data."""
    client, base = access.elasticsearch(timeout_s=30.0)
    documents = 0
    findings: list[str] = []
    search_after: list[Any] | None = None
    try:
        with client:
            # No ignore_unavailable: a missing log index is an error, not "nothing personal".
            client.post(f"{base}/{LOG_INDEX_PATTERN}/_refresh").raise_for_status()
            while True:
                body: dict[str, Any] = {
                    "query": {"prefix": {RUN_FIELD: f"{run_id}-"}},
                    "sort": [{"event.id": "asc"}],
                    "size": PAGE_SIZE,
                    "track_total_hits": False,
                }
                if search_after is not None:
                    body["search_after"] = search_after
                response = client.post(f"{base}/{LOG_INDEX_PATTERN}/_search", json=body)
                response.raise_for_status()
                hits = response.json()["hits"]["hits"]
                documents += len(hits)
                for hit in hits:
                    findings += findings_in(hit["_source"])
                if len(hits) < PAGE_SIZE:
                    break
                search_after = hits[-1]["sort"]
    except (httpx.HTTPError, KeyError, ValueError, json.JSONDecodeError) as exc:
        why = f"Elasticsearch search failed: {exc}"
        return PrivacyScan(documents=documents, findings=findings, error=why)
    return PrivacyScan(documents=documents, findings=findings)
