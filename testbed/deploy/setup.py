"""The compose stack's one-off jobs, run inside the project's image with the compose ``RenderContext``.

``prepare`` (before anything starts): the CA and server certificates, and the per-stack secret files
(Prometheus/Alertmanager web.yml, password files, the health checks' client configs), all made by the
same functions the native stack uses. ``apply`` (profile ``setup``, once Elasticsearch is healthy): the
logs area's templates, roles, users and snapshot repository through the security API, then whatever
other idempotent steps the areas declare. Both are safe to re-run.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from pathlib import Path

import yaml
from elasticsearch import ApiError, TransportError

from testbed.context import RenderContext
from testbed.logs import bootstrap, clients
from testbed.metrics import render as metrics_render
from testbed.metrics.scrape import alertmanager_dir, password_file, prometheus_dir
from testbed.native.pki import TLS_ENDPOINTS, ensure_pki

log = logging.getLogger(__name__)

# Private keys and password files are group-readable by the pki group (gid 2000, given to the consuming
# containers with group_add); the CA key stays owner-only: only `prepare` signs.
PRIVATE_TO_PREPARE = ("ca.key",)


def _share_with_pki_group(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        if path.name in PRIVATE_TO_PREPARE:
            path.chmod(0o600)
        elif path.is_dir():
            path.chmod(0o750)
        else:
            path.chmod((stat.S_IMODE(path.stat().st_mode) | 0o640) & ~0o007)


def _write_client_config(path: Path, ctx: RenderContext, password_path: Path) -> None:
    """promtool/amtool http config for the containers' own health checks (TLS + basic auth)."""
    document = {
        "basic_auth": {"username": "testbed", "password_file": str(password_path)},
        "tls_config": {"ca_file": str(ctx.ca_cert)},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def prepare(ctx: RenderContext) -> None:
    ensure_pki(ctx.pki_dir, TLS_ENDPOINTS)
    metrics_render.render_secret_files(ctx, ctx.secrets)
    # Alertmanager's health check needs its own password next to its config.
    am_password = alertmanager_dir(ctx) / "secrets" / "alertmanager_password"
    am_password.parent.mkdir(parents=True, exist_ok=True)
    am_password.write_text(ctx.secrets.alertmanager_password)
    _write_client_config(prometheus_dir(ctx) / "client.yml", ctx, password_file(ctx, "prometheus_password"))
    _write_client_config(alertmanager_dir(ctx) / "client.yml", ctx, am_password)
    ctx.snapshot_dir.mkdir(parents=True, exist_ok=True)
    for root in (ctx.pki_dir, ctx.config_dir):
        _share_with_pki_group(root)
    # Elasticsearch (another uid, pki group) writes snapshots here.
    ctx.snapshot_dir.chmod(0o2770)


def wait_for_elasticsearch(ctx: RenderContext, timeout_s: float = 300.0) -> None:
    """Until the superuser can read cluster health: one line saying what is wrong if it never can."""
    deadline = time.monotonic() + timeout_s
    last_error = "no answer"
    while time.monotonic() < deadline:
        try:
            with clients.superuser(ctx) as es:
                es.cluster.health(wait_for_status="yellow", timeout="5s")
                return
        except (ApiError, TransportError) as exc:
            last_error = str(exc).splitlines()[0]
        time.sleep(2)
    url = clients.es_url(ctx)
    raise RuntimeError(f"Elasticsearch at {url} not ready after {timeout_s:.0f} s: {last_error}")


def apply(ctx: RenderContext) -> None:
    wait_for_elasticsearch(ctx)
    bootstrap.apply(ctx)


def umask_for_group_sharing() -> None:
    """Files the jobs create start group-readable (the pki group is the process' primary group)."""
    os.umask(0o027)
