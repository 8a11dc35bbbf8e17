"""OpenAPI 3.1 documents built from the same pydantic models the endpoints validate with.

Each service serves its document at ``/openapi.json``; ``python -m services.openapi`` writes them to
``services/<name>/openapi.json`` and a test checks the committed file equals the served one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import models_json_schema

REF_TEMPLATE = "#/components/schemas/{model}"


class Problem(BaseModel):
    """RFC 9457 problem details, the body of every error answer."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    responses: dict[int, type[BaseModel] | None]
    request: type[BaseModel] | None = None
    query: Sequence[str] = ()
    tags: Sequence[str] = field(default_factory=tuple)


_OPERATIONAL = (
    Operation("GET", "/healthz", "Liveness", {200: None}, tags=("operations",)),
    Operation(
        "GET",
        "/readyz",
        "Readiness of the service's own dependencies",
        {200: None, 503: None},
        tags=("operations",),
    ),
    Operation("GET", "/metrics", "Prometheus metrics", {200: None}, tags=("operations",)),
)


def openapi_document(title: str, version: str, operations: Sequence[Operation]) -> dict[str, Any]:
    all_operations = [*operations, *_OPERATIONAL]
    models: set[type[BaseModel]] = {Problem}
    for operation in all_operations:
        models.update(m for m in operation.responses.values() if m is not None)
        if operation.request is not None:
            models.add(operation.request)
    ordered = sorted(models, key=lambda m: m.__name__)
    _, schemas = models_json_schema([(m, "validation") for m in ordered], ref_template=REF_TEMPLATE)
    paths: dict[str, dict[str, Any]] = {}
    for operation in all_operations:
        paths.setdefault(operation.path, {})[operation.method.lower()] = _operation(operation)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {"schemas": schemas.get("$defs", {})},
    }


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF_TEMPLATE.format(model=model.__name__)}


def _operation(operation: Operation) -> dict[str, Any]:
    result: dict[str, Any] = {"summary": operation.summary, "responses": {}}
    if operation.tags:
        result["tags"] = list(operation.tags)
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _path_parameters(operation.path)
    ] + [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
        for name in operation.query
    ]
    if parameters:
        result["parameters"] = parameters
    if operation.request is not None:
        result["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(operation.request)}},
        }
    for status, model in operation.responses.items():
        answer: dict[str, Any] = {"description": "error" if status >= 400 else "success"}
        if status >= 400:
            answer["content"] = {"application/problem+json": {"schema": _ref(model or Problem)}}
        elif model is not None:
            answer["content"] = {"application/json": {"schema": _ref(model)}}
        result["responses"][str(status)] = answer
    return result


def _path_parameters(path: str) -> list[str]:
    return [
        part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{") and part.endswith("}")
    ]
