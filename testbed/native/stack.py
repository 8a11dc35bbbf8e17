"""The native stack: every supervised component, in one list.

Other areas plug in here with small edits: their config renderers (the ``render=`` of prometheus,
alertmanager, blackbox_exporter, rsyslog), ``post_start`` hooks, and the services' components.
"""

from __future__ import annotations

from testbed import access
from testbed.context import RenderContext
from testbed.logs import bootstrap as logs_bootstrap
from testbed.logs import retention as logs_retention
from testbed.logs import rsyslog as logs_rsyslog
from testbed.metrics import render as metrics_render
from testbed.metrics.scrape import retention_flags
from testbed.native import builds, configs, setup
from testbed.native import services as services_native
from testbed.native.component import Component, HealthCheck

# Prometheus, Alertmanager and the exporters are built at the compose versions (testbed/native/builds.py).
GO_BUILT = builds.path


def _url(ctx: RenderContext, name: str, scheme: str = "http", path: str = "") -> str:
    return f"{scheme}://{ctx.address(name)}{path}"


def elasticsearch(ctx: RenderContext) -> Component:
    return Component(
        name="elasticsearch",
        command=[str(setup.elasticsearch_home() / "bin" / "elasticsearch")],
        port_names=("elasticsearch", "elasticsearch_transport"),
        health=HealthCheck(
            "https",
            # Healthy = at least yellow (all primaries assigned): ES answers 408 until then.
            _url(ctx, "elasticsearch", "https", "/_cluster/health?wait_for_status=yellow&timeout=1s"),
            auth=access.ELASTICSEARCH.auth(ctx),
            timeout_s=180,
        ),
        environment=configs.elasticsearch_environment(ctx),
        directory=str(setup.elasticsearch_home()),
        stop_wait_s=60,
        url=_url(ctx, "elasticsearch", "https"),
        render=logs_bootstrap.render_elasticsearch,  # + the logs file realm (users, roles)
        post_start=logs_bootstrap.apply,  # index templates, archive repository
    )


def prometheus(ctx: RenderContext) -> Component:
    conf = ctx.config_dir / "prometheus"
    return Component(
        name="prometheus",
        command=[
            str(GO_BUILT("prometheus")),
            f"--config.file={conf / 'prometheus.yml'}",
            f"--web.config.file={conf / 'web.yml'}",
            f"--storage.tsdb.path={ctx.data_dir / 'prometheus'}",
            f"--web.listen-address={ctx.address('prometheus')}",
            f"--web.external-url={_url(ctx, 'prometheus', 'https')}",
            "--web.enable-admin-api",
            "--web.enable-lifecycle",
            *retention_flags(),
        ],
        port_names=("prometheus",),
        health=HealthCheck(
            "https",
            _url(ctx, "prometheus", "https", "/-/ready"),
            auth=access.PROMETHEUS.auth(ctx),
        ),
        # Its web UI's assets are looked up under ./web/ui/static (a build without builtinassets):
        # the rendered config dir holds the page that says why the UI is absent (metrics render).
        directory=str(conf),
        url=_url(ctx, "prometheus", "https"),
        render=metrics_render.render_prometheus,
    )


def alertmanager(ctx: RenderContext) -> Component:
    conf = ctx.config_dir / "alertmanager"
    return Component(
        name="alertmanager",
        command=[
            str(GO_BUILT("alertmanager")),
            f"--config.file={conf / 'alertmanager.yml'}",
            f"--web.config.file={conf / 'web.yml'}",
            f"--storage.path={ctx.data_dir / 'alertmanager'}",
            f"--web.listen-address={ctx.address('alertmanager')}",
            f"--web.external-url={_url(ctx, 'alertmanager', 'https')}",
            "--cluster.listen-address=",  # no gossip: a single instance
        ],
        port_names=("alertmanager",),
        health=HealthCheck(
            "https",
            _url(ctx, "alertmanager", "https", "/-/ready"),
            auth=access.ALERTMANAGER.auth(ctx),
        ),
        url=_url(ctx, "alertmanager", "https"),
        render=metrics_render.render_alertmanager,
    )


def node_exporter(ctx: RenderContext) -> Component:
    return Component(
        name="node_exporter",
        command=[
            str(GO_BUILT("node_exporter")),
            f"--web.listen-address={ctx.address('node_exporter')}",
        ],
        port_names=("node_exporter",),
        health=HealthCheck("http", _url(ctx, "node_exporter", path="/metrics")),
        url=_url(ctx, "node_exporter"),
    )


def postgres_exporter(ctx: RenderContext) -> Component:
    dsn = (
        f"postgresql://testbed:{ctx.secrets.postgres_password}@{ctx.address('postgresql')}/postgres"
        "?sslmode=disable"
    )
    return Component(
        name="postgres_exporter",
        command=[
            str(GO_BUILT("postgres_exporter")),
            f"--web.listen-address={ctx.address('postgres_exporter')}",
        ],
        port_names=("postgres_exporter",),
        health=HealthCheck("http", _url(ctx, "postgres_exporter", path="/metrics")),
        depends_on=("postgresql",),
        environment={"DATA_SOURCE_NAME": dsn},  # the environment, not argv: ps does not show it
        url=_url(ctx, "postgres_exporter"),
    )


def elasticsearch_exporter(ctx: RenderContext) -> Component:
    # Credentials through the environment (ES_USERNAME/ES_PASSWORD), never argv: ps shows argv to all.
    return Component(
        name="elasticsearch_exporter",
        command=[
            str(GO_BUILT("elasticsearch_exporter")),
            f"--web.listen-address={ctx.address('elasticsearch_exporter')}",
            f"--es.uri=https://{ctx.address('elasticsearch')}",
            f"--es.ca={ctx.ca_cert}",
            "--es.indices",  # per-index doc counts: the log-pipeline-stalled alert reads them
        ],
        port_names=("elasticsearch_exporter",),
        health=HealthCheck("http", _url(ctx, "elasticsearch_exporter", path="/metrics")),
        # The monitoring user (stack/elasticsearch/security), not the superuser.
        environment={"ES_USERNAME": "metrics_exporter", "ES_PASSWORD": ctx.secrets.metrics_exporter_password},
        # Not gated on Elasticsearch: the exporter waits 10 s for `GET /` (absent from this bare
        # distribution) before it listens, so it starts alongside Elasticsearch instead of after it.
        url=_url(ctx, "elasticsearch_exporter"),
    )


def blackbox_exporter(ctx: RenderContext) -> Component:
    return Component(
        name="blackbox_exporter",
        command=[
            str(GO_BUILT("blackbox_exporter")),
            f"--config.file={ctx.config_dir / 'blackbox_exporter' / 'blackbox.yml'}",
            f"--web.listen-address={ctx.address('blackbox_exporter')}",
        ],
        port_names=("blackbox_exporter",),
        health=HealthCheck("http", _url(ctx, "blackbox_exporter", path="/metrics")),
        url=_url(ctx, "blackbox_exporter"),
        render=metrics_render.render_blackbox,
    )


def postgresql(ctx: RenderContext) -> Component:
    port = ctx.port("postgresql")
    return Component(
        name="postgresql",
        command=[
            str(configs.PG_BIN / "postgres"),
            "-D",
            str(configs.postgres_data_dir(ctx)),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"port={port}",
            "-c",
            f"unix_socket_directories={configs.run_dir(ctx) / 'postgresql'}",
            "-c",
            "logging_collector=off",
        ],
        port_names=("postgresql",),
        health=HealthCheck("command", f"{configs.PG_BIN / 'pg_isready'} -q -h 127.0.0.1 -p {port}"),
        stop_signal="INT",  # fast shutdown
        url=f"postgresql://{ctx.address('postgresql')}",
        render=configs.render_postgresql,
        post_start=services_native.provision_stores,  # one role and database per service
    )


def epmd(ctx: RenderContext) -> Component:
    """RabbitMQ's Erlang port mapper, supervised so that nothing is left behind by `down`."""
    return Component(
        name="epmd",
        command=["/usr/bin/epmd", "-port", str(ctx.port("rabbitmq_epmd")), "-address", "127.0.0.1"],
        port_names=("rabbitmq_epmd",),
        health=HealthCheck("tcp", ctx.address("rabbitmq_epmd")),
        environment={"HOME": str(ctx.data_dir / "rabbitmq")},
    )


def rabbitmq(ctx: RenderContext) -> Component:
    return Component(
        name="rabbitmq",
        command=["/usr/lib/rabbitmq/bin/rabbitmq-server"],
        port_names=("rabbitmq", "rabbitmq_prometheus", "rabbitmq_dist"),
        health=HealthCheck("tcp", ctx.address("rabbitmq"), timeout_s=120),
        depends_on=("epmd",),
        environment=configs.rabbitmq_environment(ctx),
        directory=str(ctx.data_dir / "rabbitmq"),
        stop_wait_s=60,
        url=f"amqp://{ctx.address('rabbitmq')}",
        render=configs.render_rabbitmq,
    )


def rsyslog(ctx: RenderContext) -> Component:
    pidfile = configs.rsyslog_pidfile(ctx)
    return Component(
        name="rsyslog",
        command=[
            "/usr/sbin/rsyslogd",
            "-n",
            "-f",
            str(ctx.config_dir / "rsyslog" / "rsyslog.conf"),
            "-i",
            str(pidfile),
        ],
        # Its impstats exporter (omprog) serves Prometheus on this port.
        port_names=("rsyslog_stats",),
        # A pid file left by a killed instance must not pass for a live one.
        health=HealthCheck("command", f'test -s {pidfile} && kill -0 "$(cat {pidfile})"', timeout_s=30),
        depends_on=("elasticsearch",),  # it ships to Elasticsearch
        render=logs_rsyslog.render,
    )


def components(ctx: RenderContext) -> list[Component]:
    """Every component of the native stack (infrastructure first, then the services under test)."""
    infra = [
        elasticsearch(ctx),
        prometheus(ctx),
        alertmanager(ctx),
        node_exporter(ctx),
        postgres_exporter(ctx),
        elasticsearch_exporter(ctx),
        blackbox_exporter(ctx),
        postgresql(ctx),
        epmd(ctx),
        rabbitmq(ctx),
        rsyslog(ctx),
        logs_retention.component(ctx),  # Curator on a schedule (stack/retention.yaml)
    ]
    return infra + services_native.components(ctx)
