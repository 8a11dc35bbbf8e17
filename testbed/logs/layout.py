"""The logs area's declarations, read from ``stack/``: index templates, security files, shipping rules,
retention policy. Every engine's config is rendered from these, never restated."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from testbed.settings import STACK_DIR

ES_DIR = STACK_DIR / "elasticsearch"
SECURITY_DIR = ES_DIR / "security"


def _json_files(directory: Path) -> dict[str, dict[str, Any]]:
    """``{file stem: parsed JSON}`` of every ``*.json`` in ``directory``, sorted by name."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))}


def component_templates() -> dict[str, dict[str, Any]]:
    return _json_files(ES_DIR / "component_templates")


def index_templates() -> dict[str, dict[str, Any]]:
    return _json_files(ES_DIR / "index_templates")


def roles() -> dict[str, dict[str, Any]]:
    return _json_files(SECURITY_DIR / "roles")


def users() -> dict[str, dict[str, Any]]:
    return _json_files(SECURITY_DIR / "users")


def _flatten(properties: dict[str, Any], prefix: str = "") -> dict[str, str]:
    fields: dict[str, str] = {}
    for name, spec in properties.items():
        path = f"{prefix}{name}"
        if "properties" in spec:
            fields.update(_flatten(spec["properties"], f"{path}."))
        else:
            fields[path] = spec.get("type", "object")
    return fields


def mapped_fields() -> dict[str, str]:
    """``{dotted field: type}`` of every field the component templates map explicitly."""
    fields: dict[str, str] = {}
    for template in component_templates().values():
        fields.update(_flatten(template["template"].get("mappings", {}).get("properties", {})))
    return fields


@dataclass(frozen=True)
class Source:
    name: str
    glob: str
    format: str
    dataset: str | None = None
    start_regex: str | None = None


@dataclass(frozen=True)
class ShippingRules:
    index_prefix: str
    index_date: str
    timestamp_field: str
    id_field: str
    write_operation: str
    user: str
    password_secret: str
    sources: tuple[Source, ...]
    parse_failure_tag: str
    searchable_within_s: float

    def index_for(self, day: date) -> str:
        """The daily index an event of ``day`` (UTC) lands in."""
        if self.index_date != "YYYY.MM.DD":
            raise ValueError(
                f"shipping.yaml: index_date {self.index_date!r} is not supported: use YYYY.MM.DD"
            )
        return f"{self.index_prefix}{day:%Y.%m.%d}"

    @property
    def index_pattern(self) -> str:
        return f"{self.index_prefix}*"

    def source(self, name: str) -> Source:
        for source in self.sources:
            if source.name == name:
                return source
        raise KeyError(f"shipping.yaml: no source named {name!r}")


@cache
def shipping() -> ShippingRules:
    raw = yaml.safe_load((ES_DIR / "shipping.yaml").read_text())
    sources = tuple(Source(name=name, **spec) for name, spec in raw.pop("sources").items())
    return ShippingRules(sources=sources, **raw)


@dataclass(frozen=True)
class RetentionPolicy:
    index_prefix: str
    hot_days: int
    repository: str
    snapshot_prefix: str
    snapshot_keep_days: int
    every_minutes: int


@cache
def retention() -> RetentionPolicy:
    raw = yaml.safe_load((STACK_DIR / "retention.yaml").read_text())
    snapshot = raw["snapshot"]
    policy = RetentionPolicy(
        index_prefix=raw["index_prefix"],
        hot_days=int(raw["hot_days"]),
        repository=snapshot["repository"],
        snapshot_prefix=snapshot["name_prefix"],
        snapshot_keep_days=int(snapshot["keep_days"]),
        every_minutes=int(raw["every_minutes"]),
    )
    if policy.hot_days < 1 or policy.snapshot_keep_days < policy.hot_days:
        raise ValueError("stack/retention.yaml: need hot_days >= 1 and snapshot.keep_days >= hot_days")
    return policy
