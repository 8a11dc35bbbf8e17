"""The rules of Elastic's ECS logging specification, as checks on one written log line.

Written from the spec (github.com/elastic/ecs-logging, ``spec/spec.json``, spec version 1.0): it
declares ``@timestamp`` (index 0), ``log.level`` (index 1, ``nesting_allowed: false``) and ``message``
(index 2) required and first, in that order; ``ecs.version`` required (nesting allowed); ``labels`` keys
without dots. The file itself is not vendored: the rules are restated here as code.
"""

from __future__ import annotations

import json
import re
from typing import Any

# "datetime" in the spec; ecs-logging writes UTC with milliseconds.
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
FIRST_FIELDS = ("@timestamp", "log.level", "message")


def _field(document: dict[str, Any], dotted: str) -> Any:
    """A field present either as a dotted top-level key or as nested objects (``None`` when absent)."""
    if dotted in document:
        return document[dotted]
    node: Any = document
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def violations(line: str) -> list[str]:
    """Every way ``line`` breaks the ECS logging spec (empty when it follows it)."""
    if "\n" in line.rstrip("\n"):
        return ["more than one line"]
    try:
        pairs = json.loads(line, object_pairs_hook=list)
    except ValueError as error:
        return [f"not JSON: {error}"]
    if not isinstance(pairs, list) or not all(isinstance(pair, tuple) for pair in pairs):
        return ["not a JSON object"]
    keys = [key for key, _ in pairs]
    found: list[str] = []
    if len(keys) != len(set(keys)):
        found.append(f"duplicate keys: {sorted(k for k in set(keys) if keys.count(k) > 1)}")
    document = json.loads(line)
    if tuple(keys[:3]) != FIRST_FIELDS:
        found.append(f"first fields are {keys[:3]}, the spec wants {list(FIRST_FIELDS)}")
    for required in (*FIRST_FIELDS, "ecs.version"):
        if _field(document, required) is None:
            found.append(f"required field {required} is missing")
    if isinstance(document.get("log"), dict) and "level" in document["log"]:
        found.append("log.level is nested (the spec does not allow nesting it)")
    timestamp = document.get("@timestamp")
    if timestamp is not None and not (isinstance(timestamp, str) and _TIMESTAMP.match(timestamp)):
        found.append(f"@timestamp {timestamp!r} is not an ISO 8601 datetime")
    for name in ("log.level", "message", "ecs.version"):
        value = _field(document, name)
        if value is not None and not isinstance(value, str):
            found.append(f"{name} is a {type(value).__name__}, the spec wants a string")
    labels = document.get("labels")
    if isinstance(labels, dict):
        found.extend(f"labels key {key!r} holds a dot" for key in labels if "." in key)
    return found
