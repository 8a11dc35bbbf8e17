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

import httpx
import yaml
from elasticsearch import ApiError, Elasticsearch, TransportError

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
        elif path.suffix == ".crt":
            path.chmod(0o644)  # certificates are public
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


def kibana_url(ctx: RenderContext) -> str:
    return f"http://{ctx.host('kibana')}:{ctx.port('kibana')}"


def wait_for_kibana(ctx: RenderContext, timeout_s: float = 600.0) -> None:
    """Kibana becomes available only once ``kibana_system`` has its password (set just before)."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    auth = ("elastic", ctx.secrets.elastic_password)
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{kibana_url(ctx)}/api/status", auth=auth, timeout=10)
            level = (
                response.json().get("status", {}).get("overall", {}).get("level")
                if response.is_success
                else None
            )
            if level == "available":
                return
            last = f"HTTP {response.status_code}, level {level}"
        except (httpx.HTTPError, ValueError) as exc:
            last = str(exc) or type(exc).__name__
        time.sleep(5)
    raise RuntimeError(f"Kibana at {kibana_url(ctx)} not available after {timeout_s:.0f} s: {last}")


# Compose only (the native node has no ILM): attaches the retention policy to the logs indices.
LIFECYCLE_TEMPLATE = "logs-testbed-lifecycle"


def apply_retention(es: Elasticsearch) -> None:
    """The logs area's ILM and SLM policies (rendered from stack/retention.yaml), attached to the logs
    index template through one extra component template, and to the indices that already exist."""
    from testbed.logs import layout, retention

    ilm_name, slm_id = retention.ILM_FILE.stem, retention.SLM_FILE.stem
    es.ilm.put_lifecycle(name=ilm_name, policy=retention.ilm_policy()["policy"])
    es.slm.put_lifecycle(policy_id=slm_id, **retention.slm_policy())
    es.cluster.put_component_template(
        name=LIFECYCLE_TEMPLATE,
        template={"settings": {"index.lifecycle.name": ilm_name}},
        meta={"description": "compose: ILM policy of the logs indices (testbed/deploy/setup.py)"},
    )
    for name, body in layout.index_templates().items():
        extra = {key: body[key] for key in ("template", "version", "data_stream") if key in body}
        es.indices.put_index_template(
            name=name,
            index_patterns=body["index_patterns"],
            composed_of=[*body["composed_of"], LIFECYCLE_TEMPLATE],
            priority=body.get("priority"),
            meta=body.get("_meta"),
            **extra,
        )
    es.indices.put_settings(
        index=f"{layout.retention().index_prefix}*",
        settings={"index.lifecycle.name": ilm_name},
        allow_no_indices=True,
    )


def apply(ctx: RenderContext) -> None:
    """Elasticsearch's side: what Kibana needs before it can start (kibana_system's password) and more."""
    wait_for_elasticsearch(ctx)
    bootstrap.apply(ctx)
    log.info("Elasticsearch: templates, roles, users, snapshot repository applied")
    with clients.superuser(ctx) as es:
        apply_retention(es)
    log.info("Elasticsearch: ILM and SLM policies applied")


def import_kibana_objects(ctx: RenderContext) -> None:
    """Kibana's side, once it is available: the logs area's saved objects (overwrite: idempotent)."""
    from testbed.logs import kibana

    wait_for_kibana(ctx)
    kibana.import_saved_objects(kibana_url(ctx), "elastic", ctx.secrets.elastic_password)
    log.info("Kibana: saved objects imported")


def umask_for_group_sharing() -> None:
    """Files the jobs create start group-readable (the pki group is the process' primary group)."""
    os.umask(0o027)
