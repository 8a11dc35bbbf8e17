"""Secrets generated once per stack, stored 0600 in the state directory, never committed or printed.

Add a field here to add a secret: an existing file gains the new field on the next load.
"""

from __future__ import annotations

import json
import os
import secrets as token
from pathlib import Path

from pydantic import BaseModel, Field

SECRETS_FILE = "secrets.json"


def _password() -> str:
    return token.token_urlsafe(24)


class Secrets(BaseModel):
    # Elasticsearch built-in superuser
    elastic_password: str = Field(default_factory=_password)
    # Users the project defines in Elasticsearch (stack/elasticsearch/security)
    logs_writer_password: str = Field(default_factory=_password)
    logs_reader_password: str = Field(default_factory=_password)
    logs_admin_password: str = Field(default_factory=_password)
    kibana_system_password: str = Field(default_factory=_password)
    # elasticsearch_exporter's user: the cluster/indices `monitor` privileges, nothing else
    metrics_exporter_password: str = Field(default_factory=_password)
    # Basic auth of Prometheus and Alertmanager (user "testbed")
    prometheus_password: str = Field(default_factory=_password)
    alertmanager_password: str = Field(default_factory=_password)
    # Basic auth Alertmanager sends to the alert sink's webhook (user "alertmanager")
    alert_sink_password: str = Field(default_factory=_password)
    # PostgreSQL superuser "testbed" and RabbitMQ user "testbed"
    postgres_password: str = Field(default_factory=_password)
    # Each service's own PostgreSQL role (owner of its database, refused on the others')
    inventory_db_password: str = Field(default_factory=_password)
    orders_db_password: str = Field(default_factory=_password)
    payments_db_password: str = Field(default_factory=_password)
    rabbitmq_password: str = Field(default_factory=_password)
    rabbitmq_erlang_cookie: str = Field(default_factory=lambda: token.token_hex(20))
    # Token guarding the services' fault-injection admin endpoints
    fault_admin_token: str = Field(default_factory=_password)
    # Grafana admin (compose/Nix)
    grafana_admin_password: str = Field(default_factory=_password)
    # Kibana's saved-objects encryption key (compose; Kibana wants >= 32 characters)
    kibana_encryption_key: str = Field(default_factory=lambda: token.token_hex(32))


def load_or_create(state_dir: Path) -> Secrets:
    """Read ``<state_dir>/secrets.json``, creating it (0600) or adding missing fields as needed."""
    path = state_dir / SECRETS_FILE
    existing: dict[str, str] = {}
    if path.exists():
        existing = json.loads(path.read_text())
    result = Secrets(**existing)
    if result.model_dump() != existing:
        state_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(result.model_dump(), fh, indent=2)
        tmp.replace(path)
    return result
