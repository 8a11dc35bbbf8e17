"""Configuration files of the native components, rendered from a ``RenderContext``.

Each ``*_text`` function is pure (unit-tested); each ``render_*`` writes into the state dir and is
idempotent. The Prometheus, Alertmanager, blackbox and rsyslog configs here are minimal defaults: the
metrics and logs areas plug their own renderers into ``testbed/native/stack.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

from testbed import access
from testbed.context import RenderContext
from testbed.native import setup

STACK_USER_NAME = access.STACK_USER  # the user Prometheus/Alertmanager basic auth and PG/RabbitMQ accept


def write_file(path: Path, text: str, private: bool = False) -> None:
    """Write ``text`` only when it changed (keeps mtimes stable); ``private`` files are 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = 0o600 if private else 0o644
    if path.exists() and path.read_text() == text:
        path.chmod(mode)
        return
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    tmp.chmod(mode)
    tmp.replace(path)


def component_dirs(ctx: RenderContext, name: str) -> tuple[Path, Path, Path]:
    """(config, data, log) directories of one component, created."""
    dirs = (ctx.config_dir / name, ctx.data_dir / name, ctx.log_dir / name)
    for directory in dirs:
        directory.mkdir(parents=True, exist_ok=True)
    return dirs


def home_dir(ctx: RenderContext) -> Path:
    """HOME of every component (tools such as Erlang and Java write dotfiles there)."""
    return ctx.state_dir / "home"


def run_dir(ctx: RenderContext) -> Path:
    """Pid files and unix sockets."""
    return ctx.state_dir / "run"


def tmp_dir(ctx: RenderContext) -> Path:
    return ctx.state_dir / "tmp"


# --- Elasticsearch ------------------------------------------------------------------------------


def elasticsearch_yml(ctx: RenderContext) -> str:
    settings = {
        "cluster.name": "testbed",
        "node.name": "testbed-es",
        "path.data": str(ctx.data_dir / "elasticsearch"),
        "path.logs": str(ctx.log_dir / "elasticsearch"),
        "path.repo": [str(ctx.snapshot_dir)],
        "network.host": "127.0.0.1",
        "http.port": ctx.port("elasticsearch"),
        "transport.port": ctx.port("elasticsearch_transport"),
        "discovery.type": "single-node",
        # No mmap: no vm.max_map_count tuning needed on the host.
        "node.store.allow_mmap": False,
        # A small test disk must not turn indices read-only.
        "cluster.routing.allocation.disk.threshold_enabled": False,
        "action.destructive_requires_name": True,
        "xpack.security.enabled": True,
        "xpack.security.http.ssl.enabled": True,
        "xpack.security.http.ssl.key": "certs/elasticsearch.key",
        "xpack.security.http.ssl.certificate": "certs/elasticsearch.crt",
        "xpack.security.http.ssl.certificate_authorities": ["certs/ca.crt"],
        # Single node on loopback: nothing else joins over transport.
        "xpack.security.transport.ssl.enabled": False,
    }
    return "# Rendered by testbed (testbed/native/configs.py): do not edit.\n" + yaml.safe_dump(
        settings, sort_keys=False
    )


# No heap pre-touch: a testbed does not need 1 GB faulted in at start (faster start, lower idle RSS).
ES_JAVA_OPTS = "-Xms1g -Xmx1g -XX:-AlwaysPreTouch"


KEYSTORE_TOOL_JAVA_OPTS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xshare:auto"


def elasticsearch_environment(ctx: RenderContext) -> dict[str, str]:
    return {
        "ES_PATH_CONF": str(ctx.config_dir / "elasticsearch"),
        "ES_JAVA_HOME": str(setup.java_home()),
        "ES_JAVA_OPTS": ES_JAVA_OPTS,
        "ES_TMPDIR": str(tmp_dir(ctx) / "elasticsearch"),
    }


def _run_as_stack_user(command: list[str], env: dict[str, str], stdin: str | None = None) -> None:
    user = setup.stack_user()
    prefix = ["runuser", "-u", user, "--"] if user else []
    result = subprocess.run(
        prefix + command, input=stdin, env={**os.environ, **env}, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {(result.stdout + result.stderr).strip()[-400:]}")


def render_elasticsearch(ctx: RenderContext) -> None:
    conf, _data, _logs = component_dirs(ctx, "elasticsearch")
    (tmp_dir(ctx) / "elasticsearch").mkdir(parents=True, exist_ok=True)
    ctx.snapshot_dir.mkdir(parents=True, exist_ok=True)
    es_home = setup.elasticsearch_home()
    # Defaults shipped with the distribution (jvm.options, log4j2, file realm files): copied once.
    for shipped in (es_home / "config").iterdir():
        target = conf / shipped.name
        if shipped.is_file() and not target.exists() and shipped.name != "elasticsearch.yml":
            shutil.copyfile(shipped, target)
    # Entitlements only let Elasticsearch read files below its config dir.
    certs = conf / "certs"
    certs.mkdir(exist_ok=True)
    for name in ("elasticsearch.crt", "elasticsearch.key", "ca.crt"):
        source = ctx.pki_dir / name
        write_file(certs / name, source.read_text(), private=name.endswith(".key"))
    write_file(conf / "elasticsearch.yml", elasticsearch_yml(ctx))
    keystore = conf / "elasticsearch.keystore"
    if not keystore.exists():
        setup.chown_to_stack_user(ctx.state_dir)
        # One JVM, not two: `add -f` creates the keystore when there is none. The tool is a short-lived
        # JVM: the C1 compiler and the serial collector start it in about 2/3 of the CPU time.
        env = {**elasticsearch_environment(ctx), "CLI_JAVA_OPTS": KEYSTORE_TOOL_JAVA_OPTS}
        tool = str(es_home / "bin" / "elasticsearch-keystore")
        # bootstrap.password sets the `elastic` password on the first start of a fresh cluster.
        _run_as_stack_user(
            [tool, "add", "-x", "-f", "bootstrap.password"], env, stdin=ctx.secrets.elastic_password
        )


# --- Clients of Prometheus and Alertmanager (their servers' configs: testbed/metrics/render.py) ---


def client_http_config_text(ctx: RenderContext, password: str) -> str:
    """A Prometheus-style http_config for clients (amtool, promtool's --http.config.file, scripts)."""
    config = {
        "basic_auth": {"username": STACK_USER_NAME, "password": password},
        "tls_config": {"ca_file": str(ctx.ca_cert)},
    }
    return yaml.safe_dump(config, sort_keys=False)


def client_http_config(ctx: RenderContext, name: str) -> Path:
    return ctx.config_dir / "clients" / f"{name}-http.yml"


def render_client_http_configs(ctx: RenderContext) -> None:
    for endpoint in (access.PROMETHEUS, access.ALERTMANAGER):
        assert endpoint.credential is not None
        text = client_http_config_text(ctx, endpoint.credential.password(ctx))
        write_file(client_http_config(ctx, endpoint.port), text, private=True)


# --- PostgreSQL ---------------------------------------------------------------------------------

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def postgres_data_dir(ctx: RenderContext) -> Path:
    return ctx.data_dir / "postgresql" / "pgdata"


def render_postgresql(ctx: RenderContext) -> None:
    """initdb a private cluster once; settings go on the command line (see stack.py)."""
    component_dirs(ctx, "postgresql")
    (run_dir(ctx) / "postgresql").mkdir(parents=True, exist_ok=True)
    pgdata = postgres_data_dir(ctx)
    if (pgdata / "PG_VERSION").exists():
        return
    shutil.rmtree(pgdata, ignore_errors=True)  # a half-made cluster from an interrupted initdb
    pwfile = ctx.config_dir / "postgresql" / "initdb.pw"
    write_file(pwfile, ctx.secrets.postgres_password + "\n", private=True)
    setup.chown_to_stack_user(ctx.state_dir)
    try:
        _run_as_stack_user(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(pgdata),
                "-U",
                STACK_USER_NAME,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ],
            {},
        )
    finally:
        pwfile.unlink(missing_ok=True)


# --- RabbitMQ -----------------------------------------------------------------------------------


def rabbitmq_conf(ctx: RenderContext) -> str:
    secrets = ctx.secrets
    lines = [
        "# Rendered by testbed (testbed/native/configs.py): do not edit.",
        f"listeners.tcp.default = 127.0.0.1:{ctx.port('rabbitmq')}",
        "prometheus.tcp.ip = 127.0.0.1",
        f"prometheus.tcp.port = {ctx.port('rabbitmq_prometheus')}",
        # The default user is created on the node's first boot only; guest is then never created.
        f"default_user = {STACK_USER_NAME}",
        f"default_pass = {secrets.rabbitmq_password}",
        "default_user_tags.administrator = true",
        "default_permissions.configure = .*",
        "default_permissions.read = .*",
        "default_permissions.write = .*",
        "loopback_users = none",
        "log.console = true",
        "log.console.level = info",
        "log.file = false",
    ]
    return "\n".join(lines) + "\n"


def rabbitmq_environment(ctx: RenderContext) -> dict[str, str]:
    conf = ctx.config_dir / "rabbitmq"
    data = ctx.data_dir / "rabbitmq"
    return {
        "HOME": str(data),  # the Erlang cookie lives in $HOME/.erlang.cookie
        "RABBITMQ_CONF_ENV_FILE": str(conf / "rabbitmq-env.conf"),
        "RABBITMQ_CONFIG_FILE": str(conf / "rabbitmq.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(conf / "enabled_plugins"),
        "RABBITMQ_MNESIA_BASE": str(data / "mnesia"),
        "RABBITMQ_LOG_BASE": str(ctx.log_dir / "rabbitmq"),
        "RABBITMQ_LOGS": "-",
        "RABBITMQ_PID_FILE": str(run_dir(ctx) / "rabbitmq.pid"),
        "RABBITMQ_NODENAME": "testbed@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(ctx.port("rabbitmq")),
        "RABBITMQ_DIST_PORT": str(ctx.port("rabbitmq_dist")),
        "ERL_EPMD_PORT": str(ctx.port("rabbitmq_epmd")),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        # Distribution on loopback only, and never a stray epmd daemon: ours runs under supervisord.
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": (
            "-kernel inet_dist_use_interface {127,0,0,1} -start_epmd false"
        ),
        "RABBITMQ_CTL_ERL_ARGS": "-start_epmd false",
    }


def render_rabbitmq(ctx: RenderContext) -> None:
    conf, data, _logs = component_dirs(ctx, "rabbitmq")
    (data / "mnesia").mkdir(exist_ok=True)
    run_dir(ctx).mkdir(parents=True, exist_ok=True)
    write_file(conf / "rabbitmq.conf", rabbitmq_conf(ctx), private=True)
    write_file(conf / "enabled_plugins", "[rabbitmq_prometheus].\n")
    write_file(
        conf / "rabbitmq-env.conf", "# Environment comes from supervisord (testbed/native/stack.py).\n"
    )
    cookie = data / ".erlang.cookie"
    write_file(cookie, ctx.secrets.rabbitmq_erlang_cookie, private=True)
    cookie.chmod(0o400)


# --- rsyslog (its pipeline: testbed/logs/rsyslog.py) ---------------------------------------------


def rsyslog_pidfile(ctx: RenderContext) -> Path:
    return run_dir(ctx) / "rsyslogd.pid"
