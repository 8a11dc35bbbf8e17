"""Compose healthcheck of a service container: ``python -m testbed.deploy.healthcheck gateway 1``.

Exits 0 when the instance's health URL answers 2xx, 1 otherwise (one line on stderr saying why).
"""

from __future__ import annotations

import sys

import httpx

from testbed.deploy.runtime import health_url


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not argv[1].isdigit():
        print("usage: python -m testbed.deploy.healthcheck <port-name> <instance>", file=sys.stderr)
        return 2
    url = health_url(argv[0], int(argv[1]))
    try:
        response = httpx.get(url, timeout=3.0)
    except httpx.HTTPError as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1
    if not response.is_success:
        print(f"{url}: HTTP {response.status_code}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
