"""stack/compose.yaml checked without a Docker engine: schema, invariants, variables, image build."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed import settings
from testbed.context import RenderContext
from testbed.deploy import gotools, privileges, validate
from testbed.deploy.compose import (
    COMPOSE_FILE,
    ENDPOINTS_FILE,
    ENDPOINTS_SWITCH,
    ComposeUnavailable,
    compose_args,
    compose_cli,
)
from testbed.deploy.envfile import ENDPOINT_PORTS, read_env, secret_variable, write_env
from testbed.deploy.runtime import COMPOSE_HOSTS
from testbed.secrets import Secrets

DOCKERFILE = settings.STACK_DIR / "docker" / "services.Dockerfile"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Exactly what `testbed init` writes."""
    return read_env(write_env(tmp_path_factory.mktemp("init") / ".env"))


@pytest.fixture(scope="module")
def model(env: dict[str, str]) -> dict[str, Any]:
    return validate.load_compose(env)


def test_compose_file_matches_the_compose_spec_schema(model: dict[str, Any]) -> None:
    assert validate.schema_errors(model, "compose-spec") == []


def test_schema_check_catches_a_typo(model: dict[str, Any]) -> None:
    broken = {
        **model,
        "services": {**model["services"], "kibana": {**model["services"]["kibana"], "heathcheck": {}}},
    }
    assert any("heathcheck" in error for error in validate.schema_errors(broken, "compose-spec"))


def test_project_invariants_hold(model: dict[str, Any]) -> None:
    assert validate.invariant_violations(model, settings.versions()["images"]) == []


def test_invariants_catch_latest_tags_open_ports_and_missing_healthchecks(model: dict[str, Any]) -> None:
    kibana = {key: value for key, value in model["services"]["kibana"].items() if key != "healthcheck"}
    kibana["image"] = "docker.elastic.co/kibana/kibana:latest"
    kibana["ports"] = ["0.0.0.0:5601:5601", "5601"]
    problems = validate.invariant_violations(
        {**model, "services": {**model["services"], "kibana": kibana}}, settings.versions()["images"]
    )
    assert any("not pinned" in p for p in problems)
    assert sum("127.0.0.1" in p for p in problems) == 2
    assert any("without a healthcheck" in p for p in problems)


def test_invariants_catch_a_one_off_job_that_up_wait_would_report_as_failed(model: dict[str, Any]) -> None:
    job = {**model["services"]["setup"]}
    del job["profiles"]
    problems = validate.invariant_violations(
        {**model, "services": {**model["services"], "setup": job}}, settings.versions()["images"]
    )
    assert any("setup: one-off job" in p for p in problems)


def test_every_variable_is_defined_by_testbed_init(env: dict[str, str]) -> None:
    used = validate.referenced_variables(validate.load_compose_raw())
    assert used - set(env) == set(), "add them to testbed/deploy/envfile.py:render_env"


def test_every_required_variable_fails_loudly_when_missing(env: dict[str, str]) -> None:
    with pytest.raises(validate.InterpolationError, match="testbed init"):
        validate.load_compose({k: v for k, v in env.items() if k != "ELASTIC_PASSWORD"})


def test_no_secret_is_written_into_the_compose_file(env: dict[str, str]) -> None:
    text = COMPOSE_FILE.read_text()
    assert not re.search(r"(?i)(password|token|cookie|key)\s*:\s*[\"']?[A-Za-z0-9_\-]{12,}", text)


def test_every_compose_host_is_a_compose_service(model: dict[str, Any]) -> None:
    services = set(model["services"])
    assert {host for host in COMPOSE_HOSTS.values()} - services == set()


def test_every_declared_service_instance_has_a_container(model: dict[str, Any]) -> None:
    for name in ("gateway", "inventory", "orders", "payments", "alert_sink"):
        for instance in range(len(settings.ports()[name])):
            host = COMPOSE_HOSTS.get(f"{name}-{instance}", COMPOSE_HOSTS[name])
            command = model["services"][host]["command"]
            assert command[-2:] == [name, str(instance)], host


def test_only_ui_services_join_the_outside_network(model: dict[str, Any]) -> None:
    assert model["networks"]["backend"]["internal"] is True
    published = {name for name, service in model["services"].items() if service.get("ports")}
    outside = {
        name for name, service in model["services"].items() if "frontend" in service.get("networks", [])
    }
    assert published == outside == {"kibana", "grafana", "prometheus", "alertmanager"}


def test_services_image_is_multi_stage_non_root_and_uv_locked() -> None:
    text = DOCKERFILE.read_text()
    assert len(re.findall(r"^FROM ", text, re.MULTILINE)) >= 3
    assert "uv sync --frozen --no-dev" in text
    users = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert users and not users[-1].startswith(("root", "0")), "the runtime stage must drop root"
    ignore = DOCKERFILE.with_name(DOCKERFILE.name + ".dockerignore").read_text()
    assert "stack/.env" in ignore


def test_env_file_is_gitignored() -> None:
    if not (settings.REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout (the Nix check's source copy): .gitignore not in force")
    result = subprocess.run(["git", "check-ignore", "-q", "stack/.env"], cwd=settings.REPO_ROOT, check=False)
    assert result.returncode == 0, "stack/.env must be gitignored"


@pytest.fixture(scope="session")
def compose_loader() -> tuple[str, ...]:
    """Compose's own loader (compose-go): the installed CLI, else the pinned plugin built from the Go
    proxy and cached (run standalone: no docker CLI or engine needed). Never skipped: make test runs it."""
    try:
        return compose_cli()
    except ComposeUnavailable:
        return (str(gotools.compose_plugin()),)


@pytest.mark.parametrize("with_endpoints", ["0", "1"])
def test_docker_compose_config_parses_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_endpoints: str, compose_loader: tuple[str, ...]
) -> None:
    cli = compose_loader
    monkeypatch.setenv(ENDPOINTS_SWITCH, with_endpoints)
    env_file = write_env(tmp_path / ".env")
    result = subprocess.run(
        [*cli, *compose_args("--env-file", str(env_file), "--profile", "setup", "config", "--quiet")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_compose_own_model_passes_the_invariants(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compose_loader: tuple[str, ...]
) -> None:
    """The same rules on the model compose itself resolved (normalized ports, mounts, dependencies)."""
    import json

    cli = compose_loader
    monkeypatch.setenv(ENDPOINTS_SWITCH, "1")
    env_file = write_env(tmp_path / ".env")
    result = subprocess.run(
        [
            *cli,
            *compose_args("--env-file", str(env_file), "--profile", "setup", "config", "--format", "json"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    model = json.loads(result.stdout)
    assert validate.invariant_violations(model, settings.versions()["images"]) == []
    # Long-syntax mounts and resolved dependencies: the write check on compose's own reading.
    assert privileges.volume_write_problems(model, DOCKERFILE.read_text()) == []
    assert model["services"]["postgres"]["user"] == "999:2000"
    published = [port for service in model["services"].values() for port in service.get("ports", [])]
    assert published and all(port["host_ip"] == "127.0.0.1" for port in published)


def _container_mounts(service: dict[str, Any]) -> list[str]:
    return [str(mount).split(":")[1] for mount in service.get("volumes", [])]


def test_logstash_sees_every_log_directory_its_pipeline_reads(model: dict[str, Any]) -> None:
    pipeline = (settings.STACK_DIR / "logstash" / "pipeline").glob("*.conf")
    paths = [p for conf in pipeline for p in re.findall(r'path => \["([^"]+)"\]', conf.read_text())]
    assert paths, "no file inputs found in stack/logstash/pipeline"
    mounts = _container_mounts(model["services"]["logstash"])
    for path in paths:
        assert any(path.startswith(mount + "/") for mount in mounts), f"{path} is not mounted into logstash"


def test_every_log_directory_logstash_reads_is_written_by_a_container(model: dict[str, Any]) -> None:
    logstash_volumes = {str(m).split(":")[0] for m in model["services"]["logstash"]["volumes"]}
    for volume in logstash_volumes & {"service-logs", "postgres-logs", "rabbitmq-logs"}:
        writers = [
            name
            for name, service in model["services"].items()
            if name not in ("logstash", "prepare")
            and any(
                str(m).split(":")[0] == volume and not str(m).endswith(":ro")
                for m in service.get("volumes", [])
            )
        ]
        assert writers, f"nobody writes into {volume}"


def _listening_ports() -> dict[str, set[int]]:
    """Compose service -> the stack/ports.yaml ports it listens on (as declared, no env overrides)."""
    result: dict[str, set[int]] = {}
    for name, ports in settings.declared_ports().items():
        for index, port in enumerate(ports):
            host = COMPOSE_HOSTS.get(f"{name}-{index}", COMPOSE_HOSTS.get(name))
            if host:
                result.setdefault(host, set()).add(int(port))
    return result


def test_metrics_compose_renders_point_at_compose_services_and_ports(model: dict[str, Any]) -> None:
    """Every host:port in the metrics area's committed compose configs is a container listening there."""
    files = [
        settings.STACK_DIR / "prometheus" / "compose" / "prometheus.yml",
        settings.STACK_DIR / "alertmanager" / "compose" / "alertmanager.yml",
    ]
    # Hosts may start with a digit (127.0.0.1): the first version of this pattern missed those.
    address = re.compile(r"(?:^|[\s/'\"])([a-z0-9][a-z0-9.-]*):(\d{2,5})\b", re.MULTILINE)
    addresses = {match for path in files for match in address.findall(path.read_text())}
    assert addresses
    listening = _listening_ports()
    for host, port in sorted(addresses):
        assert host in model["services"], f"{host}:{port} is no compose service"
        assert int(port) in listening.get(host, set()), f"{host} does not listen on {port}"


# Flags whose values are container paths or listen addresses: compose may place these differently.
_PLACEMENT_FLAGS = {"--config.file", "--web.listen-address", "--storage.tsdb.path", "--storage.path"}


def _flags(arguments: list[str]) -> dict[str, str]:
    return dict(argument.partition("=")[::2] for argument in arguments if argument.startswith("--"))


@pytest.mark.parametrize("service", ["prometheus", "alertmanager"])
def test_prometheus_and_alertmanager_flags_follow_the_metrics_declaration(
    model: dict[str, Any], service: str
) -> None:
    from testbed.metrics.alertmanager import alertmanager_flags
    from testbed.metrics.render import compose_context
    from testbed.metrics.scrape import prometheus_flags

    declared = _flags(
        (prometheus_flags if service == "prometheus" else alertmanager_flags)(compose_context())
    )
    used = _flags(model["services"][service]["command"])
    assert set(declared) <= set(used), f"flags missing from compose: {set(declared) - set(used)}"
    for flag, value in declared.items():
        if flag not in _PLACEMENT_FLAGS:
            assert used[flag] == value, flag


def test_secrets_are_all_defined_and_all_used(model: dict[str, Any]) -> None:
    used = {
        secret if isinstance(secret, str) else secret["source"]
        for service in model["services"].values()
        for secret in service.get("secrets", [])
    }
    assert used == set(model.get("secrets", {}))


def test_grafana_gets_every_variable_its_committed_config_reads(model: dict[str, Any]) -> None:
    grafana_dir = settings.STACK_DIR / "grafana"
    texts = [
        path.read_text()
        for path in [grafana_dir / "grafana.ini", *grafana_dir.glob("provisioning/**/*.y*ml")]
    ]
    wanted = {name for text in texts for name in re.findall(r"\$(?:__env\{)?([A-Z][A-Z0-9_]+)\}?", text)}
    environment = model["services"]["grafana"]["environment"]
    provided = set(environment) | {key.removesuffix("__FILE") for key in environment}
    assert wanted, "no variables found: has the metrics area's Grafana config moved?"
    assert wanted - provided == set()


@pytest.fixture(scope="module")
def endpoints(env: dict[str, str]) -> dict[str, Any]:
    return validate.load_compose(env, ENDPOINTS_FILE)


def test_endpoints_override_matches_the_schema_and_publishes_on_loopback_only(
    endpoints: dict[str, Any], model: dict[str, Any]
) -> None:
    assert validate.schema_errors(endpoints, "compose-spec") == []
    for name, service in endpoints["services"].items():
        assert name in model["services"], f"{name} is not a service of compose.yaml"
        assert service["ports"] and all(str(port).startswith("127.0.0.1:") for port in service["ports"])
        assert "frontend" in service["networks"]


def test_endpoints_override_publishes_what_the_host_side_tools_use(endpoints: dict[str, Any]) -> None:
    published = {
        int(str(port).split(":")[2])
        for service in endpoints["services"].values()
        for port in service["ports"]
    }
    declared = settings.declared_ports()
    for name in ENDPOINT_PORTS:
        assert set(declared[name]) <= published, name


def test_endpoints_override_variables_are_defined_by_testbed_init(env: dict[str, str]) -> None:
    used = validate.referenced_variables(validate.load_compose_raw(ENDPOINTS_FILE))
    assert used and used - set(env) == set()


@pytest.mark.parametrize(
    ("service", "patterns"),
    [
        ("kibana", ["kibana/kibana.yml"]),
        ("logstash", ["logstash/pipeline/*.conf", "logstash/config/logstash.yml"]),
    ],
)
def test_elastic_containers_get_every_variable_their_committed_config_reads(
    model: dict[str, Any], service: str, patterns: list[str]
) -> None:
    files = [path for pattern in patterns for path in settings.STACK_DIR.glob(pattern)]
    assert files, f"no committed config for {service}"
    wanted = {name for path in files for name in re.findall(r"\$\{([A-Z][A-Z0-9_]*)\}", path.read_text())}
    assert wanted - set(model["services"][service].get("environment", {})) == set()


def test_services_image_pulls_nothing_unpinned() -> None:
    """Base images come in as build args from versions.yaml; no `# syntax=` frontend image is pulled."""
    text = DOCKERFILE.read_text()
    assert not re.search(r"^#\s*syntax=", text, re.MULTILINE)
    assert set(re.findall(r"^FROM (\S+)", text, re.MULTILINE)) <= {"${UV_IMAGE}", "${PYTHON_IMAGE}"}


def test_every_container_mounting_the_pki_or_config_volume_is_in_the_pki_group(model: dict[str, Any]) -> None:
    """The volumes are 0750/0640 owned by group 2000: a container outside it could not read its certs."""
    for name, service in model["services"].items():
        volumes = {str(mount).split(":")[0] for mount in service.get("volumes", [])}
        if volumes & {"pki", "config"} and "build" not in service:
            assert "2000" in [str(group) for group in service.get("group_add", [])], name


# ---- least privilege, writability, scrape targets (issue 11 §2) ------------------------------------

SECRET_VARIABLES = {secret_variable(field) for field in Secrets.model_fields}
# What the upstream images read by their documented contract, beyond their committed config files.
IMAGE_READS = {
    "elasticsearch": {"ELASTIC_PASSWORD"},  # the image's bootstrap password of `elastic`
    "postgres": {"POSTGRES_PASSWORD"},  # POSTGRES_PASSWORD_FILE
    "rabbitmq": {"RABBITMQ_PASSWORD"},  # RABBITMQ_DEFAULT_PASS
    "postgres-exporter": {"POSTGRES_PASSWORD"},  # DATA_SOURCE_PASS_FILE
    "elasticsearch-exporter": {"METRICS_EXPORTER_PASSWORD"},  # ES_PASSWORD
    "grafana": {"GRAFANA_ADMIN_PASSWORD"},  # GF_SECURITY_ADMIN_PASSWORD__FILE
}
CONFIG_FILES = {
    "kibana": ["kibana/kibana.yml"],
    "logstash": ["logstash/pipeline/*.conf", "logstash/config/logstash.yml"],
    "grafana": ["grafana/grafana.ini", "grafana/provisioning/**/*.y*ml"],
}


def _reads(model: dict[str, Any], name: str) -> set[str]:
    service = model["services"][name]
    if "build" in service:
        return privileges.project_reads(name, service, SECRET_VARIABLES)
    files = [path for pattern in CONFIG_FILES.get(name, []) for path in settings.STACK_DIR.glob(pattern)]
    # A variable read by the config is given under the config's name, holding the secret's value.
    config_vars = {
        v for path in files for v in re.findall(r"\$(?:__env)?\{?([A-Z][A-Z0-9_]+)\}?", path.read_text())
    }
    environment = service.get("environment", {})
    raw = validate.load_compose_raw()["services"][name].get("environment", {})
    by_config = {
        variable
        for key in config_vars & set(environment)
        for variable in validate.referenced_variables(raw.get(key, ""))
    }
    # A secret file the container's health check reads (Kibana's status probe).
    health = " ".join(str(part) for part in service.get("healthcheck", {}).get("test", []))
    by_health = {
        model["secrets"][source]["environment"]
        for source in model.get("secrets", {})
        if f"/run/secrets/{source}" in health
    }
    return (by_config | by_health | IMAGE_READS.get(name, set())) & SECRET_VARIABLES


def _secret_problems(model: dict[str, Any], env: dict[str, str]) -> list[str]:
    problems = []
    for name in model["services"]:
        received = privileges.received_secrets(model, name, env, SECRET_VARIABLES)
        extra = received - _reads(model, name)
        if extra:
            problems.append(f"{name} receives secrets it never reads: {sorted(extra)}")
    return problems


def test_every_secret_a_container_receives_is_one_it_reads(
    model: dict[str, Any], env: dict[str, str]
) -> None:
    assert _secret_problems(model, env) == []


def test_project_containers_receive_what_their_code_reads(model: dict[str, Any], env: dict[str, str]) -> None:
    """The other direction for the project image: a missing secret would read as `withheld:`."""
    for name, service in model["services"].items():
        if "build" in service:
            received = privileges.received_secrets(model, name, env, SECRET_VARIABLES)
            assert privileges.project_reads(name, service, SECRET_VARIABLES) <= received, name


def test_secret_check_fails_on_one_env_file_for_all_and_on_the_superuser_exporter(
    model: dict[str, Any], env: dict[str, str]
) -> None:
    """The two defects of the first compose file: every project container got all of stack/.env, and the
    Elasticsearch exporter logged in as `elastic`."""
    services = dict(model["services"])
    services["gateway"] = {**services["gateway"], "env_file": [".env"]}
    exporter = services["elasticsearch-exporter"]
    services["elasticsearch-exporter"] = {
        **exporter,
        "environment": {"ES_USERNAME": "elastic", "ES_PASSWORD": env["ELASTIC_PASSWORD"]},
    }
    problems = _secret_problems({**model, "services": services}, env)
    assert any(p.startswith("gateway receives") and "ELASTIC_PASSWORD" in p for p in problems), problems
    assert any(p.startswith("elasticsearch-exporter receives") for p in problems), problems


def test_elasticsearch_exporter_is_a_monitoring_user(model: dict[str, Any]) -> None:
    from testbed.logs import layout

    user = model["services"]["elasticsearch-exporter"]["environment"]["ES_USERNAME"]
    assert user != "elastic"
    roles = layout.roles()
    declared = layout.users()[user]["roles"]
    for role in declared:
        assert set(roles[role]["cluster"]) <= {"monitor"}, role
        for entry in roles[role]["indices"]:
            # view_index_metadata: the exporter's --es.indices reads /_alias; neither reads documents.
            assert set(entry["privileges"]) <= {"monitor", "view_index_metadata"}, role


DOCKERFILE_TEXT = DOCKERFILE.read_text()


def test_every_container_can_write_every_volume_it_writes(model: dict[str, Any]) -> None:
    assert privileges.volume_write_problems(model, DOCKERFILE_TEXT) == []


def test_write_check_fails_on_group_add_lost_by_gosu_and_on_a_missing_prepare_dependency(
    model: dict[str, Any],
) -> None:
    """The first compose file: postgres/rabbitmq relied on group_add (gosu drops it) and did not wait
    for `prepare`, which gives the log volumes their owner."""
    services = dict(model["services"])
    for name in ("postgres", "rabbitmq"):
        old = {key: value for key, value in services[name].items() if key not in ("user", "depends_on")}
        services[name] = {**old, "group_add": ["2000"]}
    problems = privileges.volume_write_problems({**model, "services": services}, DOCKERFILE_TEXT)
    for name in ("postgres", "rabbitmq"):
        assert any(p.startswith(f"{name}: uid 999 gid 999 groups []") for p in problems), problems
        assert any(p.startswith(f"{name}: writes volume") for p in problems), problems


def test_write_check_reads_modes_from_the_dockerfile(model: dict[str, Any]) -> None:
    no_group_write = DOCKERFILE_TEXT.replace("chmod 2770", "chmod 2750")
    problems = privileges.volume_write_problems(model, no_group_write)
    assert any("elasticsearch: uid 1000" in p and "/testbed/snapshots" in p for p in problems), problems


def _compose_listening(model: dict[str, Any]) -> dict[str, set[int]]:
    listening = _listening_ports()
    return {host: ports for host, ports in listening.items() if host in model["services"]}


def test_every_compose_scrape_target_is_a_service_compose_runs(model: dict[str, Any]) -> None:
    text = (settings.STACK_DIR / "prometheus" / "compose" / "prometheus.yml").read_text()
    targets = privileges.scrape_targets(text)
    assert len(targets) >= 10
    assert privileges.target_problems(targets, _compose_listening(model)) == []


def test_scrape_target_check_fails_on_the_loopback_rsyslog_target(model: dict[str, Any]) -> None:
    """The first compose render scraped 127.0.0.1:19514 (rsyslog, which compose does not run)."""
    config = yaml.safe_load((settings.STACK_DIR / "prometheus" / "compose" / "prometheus.yml").read_text())
    config["scrape_configs"].append(
        {"job_name": "rsyslog", "static_configs": [{"targets": ["127.0.0.1:19514"]}]}
    )
    problems = privileges.target_problems(
        privileges.scrape_targets(yaml.safe_dump(config)), _compose_listening(model)
    )
    assert problems == ["job rsyslog: 127.0.0.1:19514: 127.0.0.1 is not run by this backend"]


def test_every_native_scrape_target_is_a_native_component(tmp_path: Path) -> None:
    """Natively everything is on 127.0.0.1: each target port must belong to a component the stack runs."""
    from testbed.metrics.scrape import render_prometheus_yml
    from testbed.native.stack import components

    ctx = RenderContext(mode="native", state_dir=tmp_path, ports=settings.ports(), secrets=Secrets())
    ports = {ctx.port(n, c.port_instance) for c in components(ctx) for n in c.port_names}
    targets = privileges.scrape_targets(render_prometheus_yml(ctx))
    assert len(targets) >= 10
    assert privileges.target_problems(targets, {"127.0.0.1": ports}) == []


def test_compose_host_lookup_fails_loudly_for_a_name_compose_does_not_run() -> None:
    from testbed.deploy.runtime import compose_context

    ctx = compose_context({})
    assert ctx.host("postgresql") == "postgres"
    with pytest.raises(LookupError, match="no compose service runs 'rsyslog_stats'"):
        ctx.address("rsyslog_stats")
