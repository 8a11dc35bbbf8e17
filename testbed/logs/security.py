"""Roles and users of the log indices, declared once as JSON (stack/elasticsearch/security/, as
docker-elk keeps them) and applied two ways:

- native: the bare integ-test node cannot create its ``.security`` index (its mapping needs analysis
  modules the archive lacks), so the roles and users go to the *file realm*: ``roles.yml``, ``users``
  (bcrypt hashes) and ``users_roles`` in Elasticsearch's config directory, which the node reloads by itself;
- compose (default distribution): through the security API (``apply_api``), where the built-in
  ``kibana_system`` user also gets its password.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import bcrypt
import yaml
from elasticsearch import Elasticsearch

from testbed.context import RenderContext
from testbed.logs import layout

# Elasticsearch's file realm reads "$2a$" bcrypt hashes; "$2b$" differs only for > 72-byte passwords.
_ES_BCRYPT_PREFIX = "$2a$"


def _password(ctx: RenderContext, user: Mapping[str, Any]) -> str:
    return str(ctx.secrets.model_dump()[user["password_secret"]])


def _hash(password: str, previous: str | None) -> str:
    # Keep an existing hash of the same password: the file stays byte-identical across renders.
    if previous and bcrypt.checkpw(
        password.encode(), previous.replace(_ES_BCRYPT_PREFIX, "$2b$", 1).encode()
    ):
        return previous
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()
    return _ES_BCRYPT_PREFIX + hashed.removeprefix("$2b$")


def _read_users_file(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    pairs = (line.split(":", 1) for line in path.read_text().splitlines() if ":" in line)
    return {name: hashed for name, hashed in pairs}


def file_realm(ctx: RenderContext, previous_users: Mapping[str, str] | None = None) -> dict[str, str]:
    """``{file name: content}`` of the file realm: roles.yml, users, users_roles."""
    previous_users = previous_users or {}
    roles_yml = yaml.safe_dump(layout.roles(), sort_keys=True)
    users_lines: list[str] = []
    members: dict[str, list[str]] = {}
    for user in layout.users().values():
        if user.get("reserved"):
            continue  # built-in users live in the reserved realm (compose only: kibana_system)
        name = user["username"]
        users_lines.append(f"{name}:{_hash(_password(ctx, user), previous_users.get(name))}")
        for role in user["roles"]:
            members.setdefault(role, []).append(name)
    users_roles = [f"{role}:{','.join(sorted(names))}" for role, names in sorted(members.items())]
    return {
        "roles.yml": roles_yml,
        "users": "\n".join(users_lines) + "\n",
        "users_roles": "\n".join(users_roles) + "\n",
    }


def write_file_realm(ctx: RenderContext, es_config_dir: Path) -> None:
    """Write the file realm into Elasticsearch's config directory (the node reloads it within ~5 s)."""
    es_config_dir.mkdir(parents=True, exist_ok=True)
    previous = _read_users_file(es_config_dir / "users")
    for name, content in file_realm(ctx, previous).items():
        path = es_config_dir / name
        if path.exists() and path.read_text() == content:
            continue
        tmp = path.with_name(f".{name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        with os.fdopen(fd, "w") as fh:
            fh.write(content)
        # Same owner as the directory: the node runs as the stack user and must read it.
        stat = es_config_dir.stat()
        if os.geteuid() == 0:
            os.chown(tmp, stat.st_uid, stat.st_gid)
        tmp.replace(path)


def apply_api(es: Elasticsearch, ctx: RenderContext) -> None:
    """Roles and users through the security API (a distribution that has a ``.security`` index)."""
    for name, body in layout.roles().items():
        es.security.put_role(name=name, **body)
    for name, user in layout.users().items():
        if name != user["username"]:
            raise ValueError(
                f"stack/elasticsearch/security/users/{name}.json: file name must be the username"
            )
        password = _password(ctx, user)
        if user.get("reserved"):
            # Built-in users (kibana_system) exist already: only their password is ours to set.
            es.security.change_password(username=name, password=password)
            continue
        es.security.put_user(
            username=name,
            password=password,
            roles=user["roles"],
            full_name=user.get("full_name"),
            enabled=True,
        )
