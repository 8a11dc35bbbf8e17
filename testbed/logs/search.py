"""``testbed logs-search``: the log lines a person wants during a chaos run, as a readable table."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from elasticsearch import Elasticsearch
from rich.table import Table
from rich.text import Text

from testbed.logs import layout

_SINCE = re.compile(r"^(\d+)([smhd])$")
_LEVEL_STYLES = {"error": "bold red", "critical": "bold red", "warning": "yellow", "debug": "dim"}


def parse_since(since: str) -> str:
    """``5m`` → Elasticsearch date math ``now-5m``; anything else is refused with the fix."""
    match = _SINCE.match(since.strip())
    if not match:
        raise ValueError(f"--since {since!r}: use a number and a unit s, m, h or d (e.g. 30s, 5m, 2h, 1d)")
    return f"now-{match.group(1)}{match.group(2)}"


@dataclass(frozen=True)
class LogQuery:
    text: str = "*"
    service: str | None = None
    trace_id: str | None = None
    since: str | None = "15m"
    limit: int = 50

    def to_es(self) -> dict[str, Any]:
        filters: list[dict[str, Any]] = []
        if self.service:
            filters.append({"term": {"service.name": self.service}})
        if self.trace_id:
            filters.append({"term": {"trace.id": self.trace_id}})
        if self.since:
            filters.append({"range": {"@timestamp": {"gte": parse_since(self.since)}}})
        must = [{"query_string": {"query": self.text or "*", "analyze_wildcard": True, "lenient": True}}]
        return {"bool": {"must": must, "filter": filters}}


def search(es: Elasticsearch, query: LogQuery) -> list[dict[str, Any]]:
    """Matching events, newest first (oldest first for one trace: it reads as a story)."""
    order = "asc" if query.trace_id else "desc"
    response = es.search(
        index=layout.shipping().index_pattern,
        query=query.to_es(),
        size=query.limit,
        sort=[{"@timestamp": {"order": order}}],
        ignore_unavailable=True,
        allow_no_indices=True,
    )
    return [hit["_source"] for hit in response["hits"]["hits"]]


def _get(doc: dict[str, Any], dotted: str) -> Any:
    """A field of an ECS document, nested (``{"log": {"level"}}``) or dotted (``{"log.level"}``)."""
    if dotted in doc:
        return doc[dotted]
    value: Any = doc
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _time(timestamp: str | None) -> str:
    if not timestamp:
        return ""
    try:
        return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).strftime("%H:%M:%S.%f")[:-3]
    except ValueError:
        return timestamp


def table(events: list[dict[str, Any]], title: str) -> Table:
    result = Table(title=title, expand=True, show_lines=False)
    result.add_column("time (UTC)", no_wrap=True)
    result.add_column("service", no_wrap=True)
    result.add_column("level", no_wrap=True)
    result.add_column("dataset", no_wrap=True, overflow="ellipsis", max_width=22)
    result.add_column("trace", no_wrap=True)
    result.add_column("message", overflow="fold", ratio=1, min_width=40)
    for doc in events:
        level = str(_get(doc, "log.level") or "")
        message = str(doc.get("message", ""))
        error_type = _get(doc, "error.type")
        if error_type:
            message = f"[{error_type}] {message}"
        service = _get(doc, "service.node.name") or _get(doc, "service.name") or ""
        result.add_row(
            _time(doc.get("@timestamp")),
            str(service),
            Text(level, style=_LEVEL_STYLES.get(level, "")),
            str(_get(doc, "event.dataset") or ""),
            str(_get(doc, "trace.id") or "")[:8],
            message[:500],
        )
    return result
