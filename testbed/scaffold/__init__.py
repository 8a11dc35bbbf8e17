"""``testbed service new <name>``: a new service's folder from a template, wired into the testbed.

The folder (``services/<name>/``: declaration, app, entry point, OpenAPI document) is all the team
writes; the registry picks it up. Two committed files are also rendered (the testbed cannot derive
them at run time): the compose service block with its published endpoint, and the compose
Prometheus config. A unit test for the service goes to ``tests/unit/services/``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from string import Template

from services import registry

TEMPLATES = Path(__file__).resolve().parent / "templates"
# Inserted before this line of stack/compose.yaml: the end of the services section.
COMPOSE_SECTION_END = "\nnetworks:\n"


class ScaffoldError(ValueError):
    """The new service cannot be made as asked; the message says why."""


@dataclass(frozen=True)
class Plan:
    name: str
    port: int
    root: Path  # the repository

    @property
    def folder(self) -> Path:
        return self.root / "services" / self.name

    @property
    def unit_test(self) -> Path:
        return self.root / "tests" / "unit" / "services" / f"test_service_{self.name}.py"


def _used_ports(root: Path) -> set[int]:
    import yaml

    used: set[int] = set()
    for value in yaml.safe_load((root / "stack" / "ports.yaml").read_text()).values():
        used.update(value if isinstance(value, list) else [value])
    for spec in registry.discover(root / "services").values():
        used.update(spec.ports)
    return used


def free_port(root: Path) -> int:
    """The next service port (18085, ...) that neither collides nor lands a whole thousand from another.

    Stacks run side by side at TESTBED_PORT_OFFSET=N*1000 (tests/unit/test_settings.py).
    """
    used = _used_ports(root)
    for port in range(18085, 19000):
        if all((port - other) % 1000 != 0 for other in used):
            return port
    raise ScaffoldError("no free service port in 18085-18999: pass --port")


def plan(root: Path, name: str, port: int | None = None) -> Plan:
    if not registry.valid_name(name):
        raise ScaffoldError(
            f"service name {name!r}: use lowercase letters, digits and _ (start with a letter)"
        )
    if (root / "services" / name).exists():
        raise ScaffoldError(f"services/{name} already exists")
    if port is not None and any((port - other) % 1000 == 0 for other in _used_ports(root)):
        raise ScaffoldError(f"port {port} is taken (or a whole thousand from a taken port)")
    return Plan(name, port if port is not None else free_port(root), root)


def _render(template: str, plan: Plan) -> str:
    text = (TEMPLATES / template).read_text()
    return Template(text).substitute(
        name=plan.name,
        port=plan.port,
        compose=plan.name.replace("_", "-"),
        title=plan.name.replace("_", " ").capitalize(),
        variable=plan.name.upper(),
    )


def create(plan: Plan) -> list[Path]:
    """Write the folder, its unit test and the compose wiring; return what was written."""
    written: list[Path] = []
    plan.folder.mkdir(parents=True)
    for template, target in (
        ("service.yaml.tmpl", "service.yaml"),
        ("init.py.tmpl", "__init__.py"),
        ("main.py.tmpl", "__main__.py"),
        ("app.py.tmpl", "app.py"),
    ):
        path = plan.folder / target
        path.write_text(_render(template, plan))
        written.append(path)
    plan.unit_test.write_text(_render("test_service.py.tmpl", plan))
    written.append(plan.unit_test)
    written += _wire_compose(plan)
    return written


def _insert_before(path: Path, marker: str, block: str) -> None:
    text = path.read_text()
    if marker not in text:
        raise ScaffoldError(f"{path}: cannot find where to add the service (expected {marker.strip()!r})")
    path.write_text(text.replace(marker, "\n" + block.rstrip("\n") + "\n" + marker, 1))


def _wire_compose(plan: Plan) -> list[Path]:
    stack = plan.root / "stack"
    compose = stack / "compose.yaml"
    _insert_before(compose, COMPOSE_SECTION_END, _render("compose-service.yaml.tmpl", plan))
    endpoints = stack / "compose.endpoints.yaml"
    endpoints.write_text(
        endpoints.read_text().rstrip("\n") + "\n" + _render("compose-endpoint.yaml.tmpl", plan)
    )
    return [compose, endpoints]


def render_committed(root: Path) -> None:
    """OpenAPI documents and the compose Prometheus config, in a fresh process: this one listed the
    services (module constants, the registry cache) before the new folder existed."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    for command in (
        ["-m", "services.openapi"],
        ["-c", "from testbed.cli import app; app()", "metrics", "render"],
    ):
        result = subprocess.run(
            [sys.executable, *command], cwd=root, env=environment, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            detail = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise ScaffoldError(f"`python {' '.join(command)}` failed: {detail}")
