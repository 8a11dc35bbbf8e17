"""``stack/.env``: what ``docker compose`` interpolates into ``stack/compose.yaml``.

``testbed init`` writes it (0600, gitignored): the image tags from ``stack/versions.yaml``, the published
UI ports from ``stack/ports.yaml`` and one generated value per ``testbed.secrets.Secrets`` field. Secrets
already in the file are kept, so a re-run never orphans the passwords stored in existing volumes; tags and
ports are refreshed from their declarations every time.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from dotenv import dotenv_values

from services import registry
from testbed import __version__, settings
from testbed.metrics.policy import load_policy
from testbed.secrets import Secrets

ENV_FILE = settings.STACK_DIR / ".env"
# Written by `testbed images pin` (testbed/deploy/images.py) where the registries are reachable.
DIGESTS_FILE = settings.STACK_DIR / "image-digests.json"
COMPOSE_PROJECT = "testbed"
# The only ports compose publishes (on BIND_ADDRESS): the UIs.
PUBLISHED_PORTS = ("kibana", "grafana", "prometheus", "alertmanager")
# What tests, scenarios and chaos reach from the host, published only with stack/compose.endpoints.yaml.
ENDPOINT_PORTS = ("elasticsearch", *registry.names())
SERVICES_IMAGE = "testbed-services"


def image_variable(name: str) -> str:
    return f"IMAGE_{name.upper()}"


def secret_variable(field: str) -> str:
    return field.upper()


def port_variable(name: str, instance: int = 0) -> str:
    return f"PORT_{name.upper()}" + (f"_{instance}" if instance else "")


def pinned_digests(path: Path = DIGESTS_FILE) -> dict[str, str]:
    """``testbed images pin``'s record (name -> ``image:tag@sha256:...``), if it was ever written."""
    return json.loads(path.read_text()) if path.exists() else {}


def render_env(existing: dict[str, str] | None = None, digests_file: Path = DIGESTS_FILE) -> dict[str, str]:
    """Every variable ``stack/compose.yaml`` uses, keeping secrets found in ``existing``.

    An image whose tag ``testbed images pin`` resolved is referenced by digest too (``tag@sha256:``),
    so a re-pushed tag is noticed; a digest recorded for another tag is ignored.
    """
    existing = existing or {}
    digests = pinned_digests(digests_file)
    env: dict[str, str] = {
        "COMPOSE_PROJECT_NAME": existing.get("COMPOSE_PROJECT_NAME", COMPOSE_PROJECT),
        "BIND_ADDRESS": existing.get("BIND_ADDRESS", "127.0.0.1"),
        "SERVICES_IMAGE": f"{SERVICES_IMAGE}:{__version__}",
    }
    for name, image in settings.versions()["images"].items():
        pinned = digests.get(name, "")
        env[image_variable(name)] = pinned if pinned.startswith(f"{image}@sha256:") else str(image)
    for name in PUBLISHED_PORTS + ENDPOINT_PORTS:
        for instance, port in enumerate(settings.ports()[name]):
            env[port_variable(name, instance)] = str(port)
    # Prometheus' retention is declared once, in the metrics policy; compose passes it as flags.
    retention = load_policy().retention
    env["PROMETHEUS_RETENTION_TIME"] = retention.time
    env["PROMETHEUS_RETENTION_SIZE"] = retention.size
    kept = {
        field: existing[secret_variable(field)]
        for field in Secrets.model_fields
        if existing.get(secret_variable(field))
    }
    for field, value in Secrets(**kept).model_dump().items():
        env[secret_variable(field)] = value
    return env


def read_env(path: Path = ENV_FILE) -> dict[str, str]:
    if not path.exists():
        return {}
    return {key: value for key, value in dotenv_values(path).items() if value is not None}


def withheld(field: str) -> str:
    """What a container reads for a secret compose did not give it: fails auth, names the cause."""
    return f"withheld:{secret_variable(field)}"


def secrets_from_env(environ: dict[str, str], partial: bool = False) -> Secrets:
    """The stack's secrets from environment variables (``stack/.env`` on the host, compose in a container).

    ``partial``: inside a container, which receives only the secrets it reads (stack/compose.yaml); the
    others hold a ``withheld:<VARIABLE>`` marker rather than a generated value that would look real.
    """
    missing = [secret_variable(f) for f in Secrets.model_fields if not environ.get(secret_variable(f))]
    if missing and not partial:
        raise ValueError(f"missing secret variables {', '.join(missing)}: run `testbed init` and recreate")
    return Secrets(
        **{field: environ.get(secret_variable(field)) or withheld(field) for field in Secrets.model_fields}
    )


def write_env(path: Path = ENV_FILE) -> Path:
    """Write (or refresh) the .env file, 0600 from the first byte."""
    env = render_env(read_env(path))
    lines = [
        "# Written by `testbed init`: image tags, published ports and generated secrets. Never commit.",
        *(f"{key}={value}" for key, value in env.items()),
    ]
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    tmp.replace(path)
    return path
