"""OpenAPI 3.1 documents built from the same pydantic models the endpoints validate with.

Each service serves its document at ``/openapi.json``; ``python -m services.openapi`` writes them to
``services/<name>/openapi.json`` and a test checks the committed file equals the served one. The same
``Operation`` table builds the service's routes (``routes``), so the methods a path answers (and its
``Allow`` header) are the documented ones; schemathesis checks the rest against the live services
(tests/services/test_contracts.py).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

REF_TEMPLATE = "#/components/schemas/{model}"
Endpoint = Callable[[Request], Awaitable[Response]]
# Schemas of parameters; a service answers 422 to a value outside them (so operations declare 422).
UUID_PARAMETER: dict[str, Any] = {"type": "string", "format": "uuid"}


class Problem(BaseModel):
    """RFC 9457 problem details, the body of every error answer."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None


@dataclass(frozen=True)
class Link:
    """An OpenAPI link: a value of this answer feeds a parameter of another operation ("GET /x/{id}")."""

    target: str
    parameters: Mapping[str, str]
    description: str = ""


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    responses: dict[int, type[BaseModel] | None]
    request: type[BaseModel] | None = None
    # Query parameters: a name (any string) or name -> JSON schema.
    query: Sequence[str] | Mapping[str, dict[str, Any]] = ()
    tags: Sequence[str] = field(default_factory=tuple)
    # Path parameter name -> JSON schema (default: any string).
    path_schemas: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    # Status -> links from that answer to other operations (followed by the stateful contract run).
    links: Mapping[int, Sequence[Link]] = field(default_factory=dict)
    # HTTP basic auth required (401 without it).
    basic_auth: bool = False

    @property
    def operation_id(self) -> str:
        return operation_id(f"{self.method} {self.path}")


def operation_id(label: str) -> str:
    """``"GET /orders/{order_id}"`` -> ``"get_orders_order_id"``."""
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")


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
    components: dict[str, Any] = {"schemas": schemas.get("$defs", {})}
    if any(operation.basic_auth for operation in all_operations):
        components["securitySchemes"] = {"basic": {"type": "http", "scheme": "basic"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": components,
    }


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF_TEMPLATE.format(model=model.__name__)}


def _operation(operation: Operation) -> dict[str, Any]:
    result: dict[str, Any] = {
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "responses": {},
    }
    if operation.tags:
        result["tags"] = list(operation.tags)
    if operation.basic_auth:
        result["security"] = [{"basic": []}]
    query = (
        operation.query
        if isinstance(operation.query, Mapping)
        else {name: {"type": "string"} for name in operation.query}
    )
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": operation.path_schemas.get(name, {"type": "string"}),
        }
        for name in _path_parameters(operation.path)
    ] + [{"name": name, "in": "query", "required": False, "schema": schema} for name, schema in query.items()]
    if parameters:
        result["parameters"] = parameters
    responses = dict(operation.responses)
    if operation.request is not None:
        # read_model answers these to any body: malformed JSON, too large.
        responses.setdefault(400, None)
        responses.setdefault(413, None)
        result["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(operation.request)}},
        }
    for status, model in sorted(responses.items()):
        answer: dict[str, Any] = {"description": "error" if status >= 400 else "success"}
        if status >= 400:
            answer["content"] = {"application/problem+json": {"schema": _ref(model or Problem)}}
        elif model is not None:
            answer["content"] = {"application/json": {"schema": _ref(model)}}
        if status in operation.links:
            answer["links"] = {
                link.target.split()[0].lower() + "_" + operation_id(link.target.split()[1]): {
                    "operationId": operation_id(link.target),
                    "parameters": dict(link.parameters),
                    **({"description": link.description} if link.description else {}),
                }
                for link in operation.links[status]
            }
        result["responses"][str(status)] = answer
    return result


def routes(operations: Sequence[Operation], handlers: Mapping[str, Endpoint]) -> list[Route]:
    """One route per documented path, answering exactly its documented methods (``Allow`` lists them).

    ``handlers`` maps ``"PUT /reservations/{order_id}"`` to its endpoint; every operation needs one and
    every handler an operation, so the router cannot drift from the document.
    """
    labels = {f"{op.method} {op.path}" for op in operations}
    if labels != set(handlers):
        raise ValueError(f"handlers and documented operations differ: {sorted(labels ^ set(handlers))}")
    by_path: dict[str, dict[str, Endpoint]] = {}
    for op in operations:
        by_path.setdefault(op.path, {})[op.method] = handlers[f"{op.method} {op.path}"]
    result = []
    for path, methods in by_path.items():
        if len(methods) == 1:
            ((method, endpoint),) = methods.items()
            result.append(Route(path, endpoint, methods=[method]))
        else:
            result.append(Route(path, _dispatch(dict(methods)), methods=list(methods)))
    return result


def _dispatch(methods: dict[str, Endpoint]) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await methods[method](request)

    return endpoint


def _path_parameters(path: str) -> list[str]:
    return [
        part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{") and part.endswith("}")
    ]
