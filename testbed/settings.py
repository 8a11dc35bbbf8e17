"""Where things are and which ports and versions they use: the one place every engine reads.

Ports come from ``stack/ports.yaml`` (infrastructure) and the services' declarations
(``services/<name>/service.yaml``, via ``services.registry``), versions from ``stack/versions.yaml``;
environment variables override them (``TESTBED_PORT_<NAME>``, ``TESTBED_PORT_OFFSET``, ``TESTBED_STATE_DIR``).
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from services.registry import registry

REPO_ROOT = Path(__file__).resolve().parent.parent
STACK_DIR = REPO_ROOT / "stack"


def _load_yaml(path: Path) -> dict[str, Any]:
    with path.open() as fh:
        data = yaml.safe_load(fh)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return data


@cache
def versions() -> dict[str, Any]:
    """The pinned versions (``stack/versions.yaml``)."""
    return _load_yaml(STACK_DIR / "versions.yaml")


def _port_offset() -> int:
    raw = os.environ.get("TESTBED_PORT_OFFSET", "0")
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"TESTBED_PORT_OFFSET={raw!r} is not an integer") from exc


def declared_ports() -> dict[str, list[int]]:
    """Every port as declared (``stack/ports.yaml`` + the services' declarations), no environment applied.

    Committed renders use these: they must not depend on the TESTBED_PORT_* of whoever renders them.
    """
    result: dict[str, list[int]] = {}
    for name, value in _load_yaml(STACK_DIR / "ports.yaml").items():
        result[name] = [int(p) for p in value] if isinstance(value, list) else [int(value)]
    for spec in registry().values():
        if spec.name in result:
            raise ValueError(
                f"port name {spec.name!r} is declared twice: stack/ports.yaml and services/{spec.name}"
            )
        result[spec.name] = list(spec.ports)
    return result


def ports() -> dict[str, list[int]]:
    """Every port, as a list (one entry per instance), with environment overrides applied.

    ``TESTBED_PORT_<NAME>`` may hold one port or a comma-separated list (one per instance).
    """
    declared = declared_ports()
    offset = _port_offset()
    result: dict[str, list[int]] = {}
    for name, value in declared.items():
        override = os.environ.get(f"TESTBED_PORT_{name.upper()}")
        if override:
            try:
                result[name] = [int(p) for p in override.split(",")]
            except ValueError as exc:
                message = f"TESTBED_PORT_{name.upper()}={override!r}: expected port[,port...]"
                raise ValueError(message) from exc
            continue
        result[name] = [p + offset for p in value]
    return result


def port(name: str, instance: int = 0) -> int:
    """The port of ``name`` (``instance`` picks one of a multi-instance service)."""
    try:
        return ports()[name][instance]
    except KeyError as exc:
        raise KeyError(f"no port named {name!r} in stack/ports.yaml nor a service declaration") from exc


def state_dir() -> Path:
    """The one directory holding the native stack's state, data, logs, secrets and certificates."""
    env = os.environ.get("TESTBED_STATE_DIR")
    if env:
        return Path(env).resolve()
    if os.geteuid() == 0:
        return Path("/var/lib/testbed")
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "testbed"


def cache_dir() -> Path:
    """Downloads kept outside the work tree (the Elasticsearch archive)."""
    env = os.environ.get("TESTBED_CACHE_DIR")
    if env:
        return Path(env).resolve()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "testbed"
