"""Write the metrics stack's configuration: natively into the state dir, for compose into committed files.

Native (``render_native`` or the per-component hooks the native stack calls): prometheus.yml, web.yml,
the rule files and 0600 password files under ``<state>/config/prometheus``; alertmanager.yml and web.yml
under ``<state>/config/alertmanager``; blackbox.yml under ``<state>/config/blackbox_exporter``.

Compose (``render_compose``): the same prometheus.yml/alertmanager.yml rendered with compose hosts into
``stack/prometheus/compose/`` and ``stack/alertmanager/compose/``, committed and mounted by
stack/compose.yaml; a test keeps them equal to a fresh rendering. The secret-bearing files (web.yml,
password files) are made at deploy time by ``render_secret_files``.
"""

from __future__ import annotations

import os
from pathlib import Path

from services import registry
from testbed import settings
from testbed.context import RenderContext
from testbed.metrics.alertmanager import render_alertmanager_yml, sink_password_file
from testbed.metrics.rules import RULES_DIR, rule_files
from testbed.metrics.scrape import alertmanager_dir, password_file, prometheus_dir, render_prometheus_yml
from testbed.metrics.web_config import password_matches, web_config
from testbed.secrets import Secrets
from testbed.settings import STACK_DIR

BLACKBOX_FILE = STACK_DIR / "blackbox" / "blackbox.yml"
COMPOSE_PROMETHEUS_DIR = STACK_DIR / "prometheus" / "compose"
COMPOSE_ALERTMANAGER_DIR = STACK_DIR / "alertmanager" / "compose"
# Native Prometheus is built without its npm-built web UI and serves its index page from
# ./web/ui/static/mantine-ui under its working directory (the config dir): this page says why.
UI_ABSENT_PAGE = STACK_DIR / "prometheus" / "ui-absent.html"

# Compose: the containers see the stack's state layout under this mount (config/, pki/, data/).
COMPOSE_STATE_DIR = Path("/testbed")
# Compose service names (stack/compose.yaml); a second instance is `<name>-2`. The services' names
# come from their declarations (services/registry.py: `compose_instance_name`).
COMPOSE_HOSTS = {
    "prometheus": "prometheus",
    "alertmanager": "alertmanager",
    "node_exporter": "node-exporter",
    "postgres_exporter": "postgres-exporter",
    "elasticsearch_exporter": "elasticsearch-exporter",
    "blackbox_exporter": "blackbox-exporter",
    "rabbitmq_prometheus": "rabbitmq",
    **registry.compose_names(),
}


def _owner_of(directory: Path) -> tuple[int, int]:
    stat = directory.stat()
    return stat.st_uid, stat.st_gid


def _write(path: Path, content: str, ctx: RenderContext, mode: int = 0o640) -> None:
    """Write atomically, readable by the stack user (who owns the state dir), not by others."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(content)
    if os.geteuid() == 0 and ctx.state_dir.exists():
        uid, gid = _owner_of(ctx.state_dir)
        os.chown(tmp, uid, gid)
        os.chown(path.parent, uid, gid)
    tmp.replace(path)


def _write_web_config(ctx: RenderContext, directory: Path, server: str, password: str) -> None:
    path = directory / "web.yml"
    # bcrypt salts differ on every run: keep an existing file that already accepts the password.
    if not password_matches(path, password):
        _write(path, web_config(ctx, server, password), ctx)


def render_secret_files(ctx: RenderContext, secrets: Secrets) -> None:
    """web.yml of Prometheus and Alertmanager and the password files Prometheus reads."""
    _write_web_config(ctx, prometheus_dir(ctx), "prometheus", secrets.prometheus_password)
    _write_web_config(ctx, alertmanager_dir(ctx), "alertmanager", secrets.alertmanager_password)
    for name in ("prometheus_password", "alertmanager_password"):
        _write(password_file(ctx, name), getattr(secrets, name), ctx, mode=0o600)
    # Alertmanager's credential for the alert sink's webhook (its receivers' http_config).
    _write(sink_password_file(ctx), secrets.alert_sink_password, ctx, mode=0o600)


def render_prometheus(ctx: RenderContext) -> None:
    """Native render hook of the prometheus component."""
    directory = prometheus_dir(ctx)
    _write(directory / "prometheus.yml", render_prometheus_yml(ctx), ctx)
    for name, content in rule_files().items():
        _write(directory / "rules" / name, content, ctx)
    render_secret_files(ctx, ctx.secrets)
    index = directory / "web" / "ui" / "static" / "mantine-ui" / "index.html"
    _write(index, UI_ABSENT_PAGE.read_text(), ctx, mode=0o644)


def render_alertmanager(ctx: RenderContext) -> None:
    """Native render hook of the alertmanager component."""
    directory = alertmanager_dir(ctx)
    _write(directory / "alertmanager.yml", render_alertmanager_yml(ctx), ctx)
    _write_web_config(ctx, directory, "alertmanager", ctx.secrets.alertmanager_password)
    _write(sink_password_file(ctx), ctx.secrets.alert_sink_password, ctx, mode=0o600)
    (ctx.data_dir / "alertmanager").mkdir(parents=True, exist_ok=True)


def render_blackbox(ctx: RenderContext) -> None:
    """Native render hook of the blackbox_exporter component."""
    _write(blackbox_config_file(ctx), BLACKBOX_FILE.read_text(), ctx)


def blackbox_config_file(ctx: RenderContext) -> Path:
    return ctx.config_dir / "blackbox_exporter" / "blackbox.yml"


def render_native(ctx: RenderContext) -> None:
    render_prometheus(ctx)
    render_alertmanager(ctx)
    render_blackbox(ctx)


def compose_context() -> RenderContext:
    # Secrets are never written into the committed files; placeholder values satisfy the type.
    return RenderContext(
        mode="compose",
        state_dir=COMPOSE_STATE_DIR,
        ports=settings.declared_ports(),  # committed: no TESTBED_PORT_* applied
        secrets=Secrets(),
        hosts=COMPOSE_HOSTS,
    )


def compose_files() -> dict[Path, str]:
    """Committed path -> content of every compose-mode file."""
    ctx = compose_context()
    files = {
        COMPOSE_PROMETHEUS_DIR / "prometheus.yml": render_prometheus_yml(ctx),
        COMPOSE_ALERTMANAGER_DIR / "alertmanager.yml": render_alertmanager_yml(ctx),
    }
    files.update({RULES_DIR / name: content for name, content in rule_files().items()})
    return files


def render_compose() -> list[Path]:
    """Write the committed compose files and rule files (run after changing the policy or the SLOs)."""
    written = []
    for path, content in compose_files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        written.append(path)
    return written
