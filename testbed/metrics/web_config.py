"""exporter-toolkit web.yml (TLS + bcrypt basic auth) for Prometheus and Alertmanager."""

from __future__ import annotations

from pathlib import Path

import bcrypt
import yaml

from testbed import access
from testbed.context import RenderContext

STACK_USER = access.STACK_USER


def web_config(ctx: RenderContext, server: str, password: str) -> str:
    """``server`` names the certificate pair in the PKI dir (``prometheus`` or ``alertmanager``)."""
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()
    document = {
        "tls_server_config": {
            "cert_file": str(ctx.pki_dir / f"{server}.crt"),
            "key_file": str(ctx.pki_dir / f"{server}.key"),
        },
        "basic_auth_users": {STACK_USER: hashed},
    }
    return yaml.safe_dump(document, sort_keys=False)


def password_matches(path: Path, password: str) -> bool:
    """Whether an existing web.yml already accepts ``password`` (keeps re-renders idempotent)."""
    if not path.exists():
        return False
    document = yaml.safe_load(path.read_text()) or {}
    hashed = (document.get("basic_auth_users") or {}).get(STACK_USER)
    return isinstance(hashed, str) and bcrypt.checkpw(password.encode(), hashed.encode())
