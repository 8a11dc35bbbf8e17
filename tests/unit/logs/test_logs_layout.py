"""The declared Elasticsearch layout and security files are consistent with each other and the secrets."""

from __future__ import annotations

from datetime import date
from typing import Any

import bcrypt
import pytest

from testbed.context import RenderContext
from testbed.logs import layout, security
from testbed.secrets import Secrets

# Fields the services' instrumentation, the alert sink and the PostgreSQL/RabbitMQ parsers emit.
REQUIRED_FIELDS = {
    "@timestamp": "date",
    "message": "text",
    "log.level": "keyword",
    "log.logger": "keyword",
    "service.name": "keyword",
    "event.id": "keyword",
    "event.dataset": "keyword",
    "event.duration": "long",
    "trace.id": "keyword",
    "transaction.id": "keyword",
    "span.id": "keyword",
    "http.request.method": "keyword",
    "http.response.status_code": "long",
    "url.path": "keyword",
    "error.type": "keyword",
    "error.message": "text",
    "error.stack_trace": "text",
}
CORE_TYPES = {
    "keyword",
    "text",
    "date",
    "long",
    "integer",
    "short",
    "float",
    "double",
    "boolean",
    "ip",
    "object",
}


def mapped_fields() -> dict[str, str]:
    return layout.mapped_fields()


def test_required_ecs_fields_are_mapped_with_their_type() -> None:
    fields = mapped_fields()
    wrong = {name: fields.get(name) for name, kind in REQUIRED_FIELDS.items() if fields.get(name) != kind}
    assert not wrong, f"unmapped or mistyped: {wrong}"


def test_only_core_field_types() -> None:
    # The bare native node has no x-pack mappers (match_only_text, wildcard, flattened...).
    assert set(mapped_fields().values()) <= CORE_TYPES


def test_index_template_composes_the_declared_components_for_the_shipping_prefix() -> None:
    (template,) = layout.index_templates().values()
    assert set(template["composed_of"]) == set(layout.component_templates())
    assert template["index_patterns"] == [layout.shipping().index_pattern]
    assert template["priority"] > 100  # above the default distribution's logs-*-* data stream template


def test_daily_index_name() -> None:
    assert layout.shipping().index_for(date(2026, 1, 2)) == "logs-testbed-2026.01.02"


def test_users_reference_declared_roles_and_existing_secrets() -> None:
    secret_names = set(Secrets.model_fields)
    for user in layout.users().values():
        assert user["password_secret"] in secret_names
        assert user.get("reserved") or set(user["roles"]) <= set(layout.roles())


def test_writer_role_cannot_read_or_delete() -> None:
    privileges = {p for entry in layout.roles()["logs_writer"]["indices"] for p in entry["privileges"]}
    assert privileges == {"create_doc", "auto_configure"}


@pytest.fixture
def ctx(tmp_path: Any) -> RenderContext:
    return RenderContext(mode="native", state_dir=tmp_path, ports={}, secrets=Secrets())


def test_file_realm_hashes_verify_and_are_stable(ctx: RenderContext) -> None:
    first = security.file_realm(ctx)
    hashes = dict(line.split(":", 1) for line in first["users"].splitlines())
    assert set(hashes) == {"logs_writer", "logs_reader", "logs_admin", "metrics_exporter"}
    writer_hash = hashes["logs_writer"].replace("$2a$", "$2b$", 1)
    assert bcrypt.checkpw(ctx.secrets.logs_writer_password.encode(), writer_hash.encode())
    assert security.file_realm(ctx, hashes) == first
    assert "logs_writer:logs_writer" in first["users_roles"].splitlines()
