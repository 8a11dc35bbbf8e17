"""What `testbed env` exports for tools: URLs, the CA, credentials (the variable names are the contract)."""

from __future__ import annotations

from testbed import access
from testbed.context import RenderContext
from testbed.native import builds, configs


def _login_variables(ctx: RenderContext, prefix: str, endpoint: access.Endpoint) -> dict[str, str]:
    user, password = endpoint.auth(ctx) or ("", "")
    return {f"{prefix}_URL": endpoint.url(ctx), f"{prefix}_USER": user, f"{prefix}_PASSWORD": password}


def tool_environment(ctx: RenderContext) -> dict[str, str]:
    pg_user, pg_password = access.POSTGRESQL.auth(ctx) or ("", "")
    pg_socket_dir = ctx.state_dir / "run" / "postgresql"
    return {
        "TESTBED_STATE_DIR": str(ctx.state_dir),
        "TESTBED_CA_CERT": str(ctx.ca_cert),
        **_login_variables(ctx, "TESTBED_ES", access.ELASTICSEARCH),
        **_login_variables(ctx, "TESTBED_PROMETHEUS", access.PROMETHEUS),
        **_login_variables(ctx, "TESTBED_ALERTMANAGER", access.ALERTMANAGER),
        # promtool, amtool and the rest at the compose versions: export PATH="$TESTBED_BIN_DIR:$PATH".
        "TESTBED_BIN_DIR": str(builds.bin_dir()),
        # http_config files (basic auth + CA) for amtool --http.config.file and similar clients.
        "TESTBED_PROMETHEUS_HTTP_CONFIG": str(configs.client_http_config(ctx, "prometheus")),
        "TESTBED_ALERTMANAGER_HTTP_CONFIG": str(configs.client_http_config(ctx, "alertmanager")),
        "TESTBED_PG_DSN": access.POSTGRESQL.url_with_login(ctx, "/postgres"),
        "TESTBED_PG_SOCKET_DIR": str(pg_socket_dir),
        "TESTBED_AMQP_URL": access.RABBITMQ.url_with_login(ctx, "/"),
        "TESTBED_RABBITMQ_PROMETHEUS_URL": access.RABBITMQ_PROMETHEUS.url(ctx),
        "TESTBED_NODE_EXPORTER_URL": access.NODE_EXPORTER.url(ctx),
        "TESTBED_POSTGRES_EXPORTER_URL": access.POSTGRES_EXPORTER.url(ctx),
        "TESTBED_ELASTICSEARCH_EXPORTER_URL": access.ELASTICSEARCH_EXPORTER.url(ctx),
        "TESTBED_BLACKBOX_EXPORTER_URL": access.BLACKBOX_EXPORTER.url(ctx),
        # What the tools themselves read.
        "PGHOST": ctx.host("postgresql"),
        "PGPORT": str(ctx.port("postgresql")),
        "PGUSER": pg_user,
        "PGPASSWORD": pg_password,
        "PGDATABASE": "postgres",
    }
