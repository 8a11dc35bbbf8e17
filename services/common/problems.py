"""RFC 9457 problem details: every client error is a small JSON body, never a stack trace."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

PROBLEM_MEDIA_TYPE = "application/problem+json"


class ProblemError(Exception):
    """Raise from an endpoint to answer with a problem document."""

    def __init__(self, status: int, title: str, detail: str = "", **extensions: Any) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail
        self.extensions = extensions


def problem_response(
    status: int, title: str, detail: str = "", headers: dict[str, str] | None = None, **extensions: Any
) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)
