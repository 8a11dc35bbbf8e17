"""Writes (or checks) each service's committed OpenAPI document: ``python -m services.openapi [--check]``."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from services.alert_sink.app import openapi as alert_sink_openapi
from services.gateway.app import openapi as gateway_openapi
from services.inventory.app import openapi as inventory_openapi
from services.orders.app import openapi as orders_openapi
from services.payments.app import openapi as payments_openapi

SERVICES_DIR = Path(__file__).resolve().parent
DOCUMENTS: dict[str, Callable[[], dict[str, Any]]] = {
    "gateway": gateway_openapi,
    "inventory": inventory_openapi,
    "orders": orders_openapi,
    "payments": payments_openapi,
    "alert_sink": alert_sink_openapi,
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
