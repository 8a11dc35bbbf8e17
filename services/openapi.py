"""Writes (or checks) each service's committed OpenAPI document: ``python -m services.openapi [--check]``."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from services import registry

SERVICES_DIR = Path(__file__).resolve().parent


def _document(service: str) -> Callable[[], dict[str, Any]]:
    # Every declared service's app module exports `openapi()` (the scaffold's template does too).
    function = getattr(importlib.import_module(f"services.{service}.app"), "openapi", None)
    if not callable(function):
        raise LookupError(f"services/{service}/app.py: no openapi() function (every service exports one)")
    return cast("Callable[[], dict[str, Any]]", function)


DOCUMENTS: dict[str, Callable[[], dict[str, Any]]] = {
    service: _document(service) for service in registry.names()
}


def committed_path(service: str) -> Path:
    return SERVICES_DIR / service / "openapi.json"


def render(service: str) -> str:
    return json.dumps(DOCUMENTS[service](), indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for service in DOCUMENTS:
        path = committed_path(service)
        text = render(service)
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            path.write_text(text)
    if stale:
        print(f"stale OpenAPI documents: {', '.join(stale)}: run python -m services.openapi", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
