"""Reading request bodies safely: bounded size, JSON only, one problem document on bad input."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ValidationError
from starlette.requests import Request

from services.common.problems import ProblemError


def _json_integer(value: Any) -> Any:
    # JSON Schema's "integer" includes 1.0; a strict int field would refuse it, a lax one takes "1".
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# The integer of a strict request model: what the published schema calls an integer, nothing else.
JsonInt = Annotated[int, BeforeValidator(_json_integer)]


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The body, or a 413 as soon as it exceeds ``max_bytes`` (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise ProblemError(413, "Payload too large", f"the body may hold at most {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise ProblemError(413, "Payload too large", f"the body may hold at most {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, max_bytes: int) -> Any:
    body = await read_body(request, max_bytes)
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ProblemError(400, "Malformed JSON", f"the body is not valid JSON: {error}") from None


async def read_model[M: BaseModel](request: Request, model: type[M], max_bytes: int) -> M:
    """Parse and validate the body as ``model``: 400 for bad JSON, 422 naming the wrong fields."""
    body = await read_body(request, max_bytes)
    try:
        json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ProblemError(400, "Malformed JSON", f"the body is not valid JSON: {error}") from None
    try:
        # Validated as JSON, so a strict model takes RFC 3339 strings for datetimes and nothing else.
        return model.model_validate_json(body)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise ProblemError(
            422,
            "Invalid request",
            f"{where}: {first['msg']}",
            errors=error.errors(include_url=False, include_context=False, include_input=False),
        ) from None
