"""What `testbed env` exports for tools: URLs, the CA, credentials (the variable names are the contract)."""

from __future__ import annotations

from testbed.context import RenderContext
from testbed.native import builds, configs


def tool_environment(ctx: RenderContext) -> dict[str, str]:
    secrets = ctx.secrets
    pg_socket_dir = ctx.state_dir / "run" / "postgresql"
    return {
        "TESTBED_STATE_DIR": str(ctx.state_dir),
        "TESTBED_CA_CERT": str(ctx.ca_cert),
        "TESTBED_ES_URL": f"https://{ctx.address('elasticsearch')}",
        "TESTBED_ES_USER": "elastic",
        "TESTBED_ES_PASSWORD": secrets.elastic_password,
        "TESTBED_PROMETHEUS_URL": f"https://{ctx.address('prometheus')}",
        "TESTBED_PROMETHEUS_USER": "testbed",
        "TESTBED_PROMETHEUS_PASSWORD": secrets.prometheus_password,
        "TESTBED_ALERTMANAGER_URL": f"https://{ctx.address('alertmanager')}",
        "TESTBED_ALERTMANAGER_USER": "testbed",
        "TESTBED_ALERTMANAGER_PASSWORD": secrets.alertmanager_password,
        # promtool, amtool and the rest at the compose versions: export PATH="$TESTBED_BIN_DIR:$PATH".
        "TESTBED_BIN_DIR": str(builds.bin_dir()),
        # http_config files (basic auth + CA) for amtool --http.config.file and similar clients.
        "TESTBED_PROMETHEUS_HTTP_CONFIG": str(configs.client_http_config(ctx, "prometheus")),
        "TESTBED_ALERTMANAGER_HTTP_CONFIG": str(configs.client_http_config(ctx, "alertmanager")),
        "TESTBED_PG_DSN": (
            f"postgresql://testbed:{secrets.postgres_password}@{ctx.address('postgresql')}/postgres"
        ),
        "TESTBED_PG_SOCKET_DIR": str(pg_socket_dir),
        "TESTBED_AMQP_URL": f"amqp://testbed:{secrets.rabbitmq_password}@{ctx.address('rabbitmq')}/",
        "TESTBED_RABBITMQ_PROMETHEUS_URL": f"http://{ctx.address('rabbitmq_prometheus')}",
        "TESTBED_NODE_EXPORTER_URL": f"http://{ctx.address('node_exporter')}",
        "TESTBED_POSTGRES_EXPORTER_URL": f"http://{ctx.address('postgres_exporter')}",
        "TESTBED_ELASTICSEARCH_EXPORTER_URL": f"http://{ctx.address('elasticsearch_exporter')}",
        "TESTBED_BLACKBOX_EXPORTER_URL": f"http://{ctx.address('blackbox_exporter')}",
        # What the tools themselves read.
        "PGHOST": "127.0.0.1",
        "PGPORT": str(ctx.port("postgresql")),
        "PGUSER": "testbed",
        "PGPASSWORD": secrets.postgres_password,
        "PGDATABASE": "postgres",
    }
