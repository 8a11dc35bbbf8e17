"""Every registered service is wired everywhere the testbed lists services (issue 13's guard).

A service is a folder with a declaration (services/registry.py). Forgetting one wiring used to fail no
test: the service was then silently not scraped, had no OpenAPI document, or compose pointed at
127.0.0.1. Each check here names the service and the place it is missing from.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from services import openapi, registry
from testbed import settings
from testbed.context import RenderContext
from testbed.deploy import validate
from testbed.metrics import render as metrics_render
from testbed.metrics.scrape import render_prometheus_yml
from testbed.native import stack
from testbed.secrets import Secrets

SERVICES = registry.names()
SCENARIOS_DIR = settings.REPO_ROOT / "scenarios"
DASHBOARDS_DIR = settings.STACK_DIR / "grafana" / "dashboards"
DEFAULT_FLOWS = ("browse", "order", "status")  # a scenario without `load.flows` runs them all


def native_context(tmp_path: Path) -> RenderContext:
    return RenderContext(
        mode="native", state_dir=tmp_path, ports=settings.declared_ports(), secrets=Secrets()
    )


def test_there_are_services() -> None:
    assert len(SERVICES) >= 5, SERVICES


@pytest.mark.parametrize("service", SERVICES)
def test_in_the_native_stack(service: str, tmp_path: Path) -> None:
    spec = registry.spec(service)
    components = {c.name: c for c in stack.components(native_context(tmp_path))}
    for instance in range(spec.instances):
        name = spec.component_name(instance)
        assert name in components, f"{service}: no native component {name} (testbed/native/services.py)"
        assert components[name].command[-2:] == ["-m", f"services.{service}"], name


@pytest.mark.parametrize("service", SERVICES)
def test_scraped_natively_and_in_compose(service: str, tmp_path: Path) -> None:
    spec = registry.spec(service)
    for label, text in (
        ("native", render_prometheus_yml(native_context(tmp_path))),
        (
            "compose (committed)",
            (settings.STACK_DIR / "prometheus" / "compose" / "prometheus.yml").read_text(),
        ),
    ):
        jobs = {job["job_name"]: job for job in yaml.safe_load(text)["scrape_configs"]}
        assert service in jobs, f"{service}: no scrape job in the {label} prometheus.yml"
        targets = [t for group in jobs[service]["static_configs"] for t in group["targets"]]
        assert len(targets) == spec.instances, f"{service}: {label} scrape targets {targets}"


@pytest.mark.parametrize("service", SERVICES)
def test_in_the_compose_model(service: str) -> None:
    spec = registry.spec(service)
    services = validate.load_compose_raw()["services"]
    endpoints = validate.load_compose_raw(settings.STACK_DIR / "compose.endpoints.yaml")["services"]
    for instance in range(spec.instances):
        name = spec.compose_instance_name(instance)
        assert name in services, f"{service}: no compose service {name} in stack/compose.yaml"
        command = services[name].get("command")
        assert command == ["testbed", "compose-service", service, str(instance)], f"{name}: {command}"
        assert name in endpoints, f"{service}: {name} not published in stack/compose.endpoints.yaml"


@pytest.mark.parametrize("service", SERVICES)
def test_its_compose_blocks_agree_with_its_declaration(service: str) -> None:
    """Compose blocks are written by hand (or by the scaffold): the secrets and start order they give
    must be the ones the declaration implies (its database's password, the broker's, its dependencies)."""
    spec = registry.spec(service)
    services = validate.load_compose_raw()["services"]
    for instance in range(spec.instances):
        name = spec.compose_instance_name(instance)
        block = services[name]
        variables = set(block.get("environment") or {})
        database = f"{service.upper()}_DB_PASSWORD"
        assert (database in variables) == spec.database, f"{name}: {database} vs database: {spec.database}"
        assert ("RABBITMQ_PASSWORD" in variables) == spec.amqp, f"{name}: RABBITMQ_PASSWORD vs queues"
        waits_for = set(block.get("depends_on") or {})
        wanted = {registry.spec(d).compose_name for d in spec.depends_on if d in SERVICES}
        assert wanted <= waits_for, f"{name}: does not wait for {sorted(wanted - waits_for)}"


@pytest.mark.parametrize("service", SERVICES)
def test_compose_hosts_name_it_and_never_loopback(service: str) -> None:
    ctx = metrics_render.compose_context()
    spec = registry.spec(service)
    for instance in range(spec.instances):
        component = spec.component_name(instance)
        host = ctx.hosts.get(component)
        assert host == spec.compose_instance_name(instance), f"{component}: compose host {host}"
    assert ctx.host(service) != "127.0.0.1"


def test_compose_host_lookup_of_an_unknown_service_fails_loudly() -> None:
    ctx = metrics_render.compose_context()
    with pytest.raises(LookupError, match="no compose service runs 'no_such_service'"):
        ctx.address("no_such_service")


@pytest.mark.parametrize("service", SERVICES)
def test_has_its_openapi_document(service: str) -> None:
    assert service in openapi.DOCUMENTS, f"{service}: not in services/openapi.py's set"
    path = openapi.committed_path(service)
    assert path.exists(), f"{path} missing: run python -m services.openapi"
    assert path.read_text() == openapi.render(service), f"{path} is stale: run python -m services.openapi"


def _service_variables() -> list[tuple[str, set[str]]]:
    """Dashboard variables whose options name services: (dashboard, values)."""
    found = []
    for path in sorted(DASHBOARDS_DIR.glob("*.json")):
        dashboard: dict[str, Any] = json.loads(path.read_text())
        for variable in dashboard.get("templating", {}).get("list", []):
            values = {str(o.get("value")) for o in variable.get("options", [])}
            if variable.get("type") == "custom":
                values |= {v.strip() for v in str(variable.get("query", "")).split(",")}
            if values & set(SERVICES):
                found.append((f"{path.name}:{variable.get('name')}", values))
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_in_every_dashboard_variable_that_lists_services(service: str) -> None:
    # Today the dashboards select by the `service` label (no closed list); a list added later must be whole.
    for variable, values in _service_variables():
        assert service in values, f"{service}: missing from dashboard variable {variable}"


def _scenario_flows(scenario: dict[str, Any]) -> set[str]:
    flows = (scenario.get("load") or {}).get("flows")
    return {f for f, weight in flows.items() if weight} if flows else set(DEFAULT_FLOWS)


def _alert_assertions(scenario: dict[str, Any]) -> bool:
    assertions = scenario.get("assertions") or {}
    return bool(assertions.get("alerts_expected") or assertions.get("alerts_forbidden"))


def _forbids_target_down(scenario: dict[str, Any]) -> bool:
    # TargetDown fires per scrape job: forbidding it (smoke) checks every scraped service stays up.
    return "TargetDown" in ((scenario.get("assertions") or {}).get("alerts_forbidden") or [])


@pytest.mark.parametrize("service", SERVICES)
def test_exercised_by_a_scenario(service: str) -> None:
    """Named by a scenario (a fault, an alert, a check), driven by it (its declared load flow runs),
    checked up by it (TargetDown forbidden), or, for the alert receiver, read by its alert assertions."""
    spec = registry.spec(service)
    for path in sorted(SCENARIOS_DIR.glob("*.yaml")):
        text = path.read_text()
        scenario = yaml.safe_load(text)
        if re.search(rf"\b{re.escape(service)}\b", text):
            return
        if spec.load and spec.load.flow in _scenario_flows(scenario):
            return
        if spec.role == "alert_receiver" and _alert_assertions(scenario):
            return
        if _forbids_target_down(scenario):
            return
    pytest.fail(f"{service}: no scenario in scenarios/ names it or runs its load flow")


CHAOS_DIR = settings.REPO_ROOT / "chaos" / "experiments"
TARGET_KEYS = ("target_service", "target_component")


def _chaos_targets() -> list[tuple[str, str]]:
    """(where, target) of every chaos target chosen by an experiment's default or a scenario's vars."""
    found = []
    for path in sorted(CHAOS_DIR.glob("*.yaml")):
        configuration = yaml.safe_load(path.read_text()).get("configuration") or {}
        found += [(path.name, str(configuration[key])) for key in TARGET_KEYS if key in configuration]
    for path in sorted(SCENARIOS_DIR.glob("*.yaml")):
        variables = (yaml.safe_load(path.read_text()).get("chaos") or {}).get("vars") or {}
        found += [(path.name, str(variables[key])) for key in TARGET_KEYS if key in variables]
    return found


def test_chaos_targets_only_services_declared_as_targets() -> None:
    # Generic experiments take any service (`target_service`/`target_component`): the declaration's
    # `chaos_target: false` (the alert sink, the testbed's own receiver) keeps it out of their reach.
    services = {name for name, spec in registry.registry().items() if spec.chaos_target}
    refused = [
        f"{where}: {target}"
        for where, target in _chaos_targets()
        if target in SERVICES and target not in services
    ]
    assert refused == [], "chaos targets a service whose declaration says chaos_target: false"
    assert any(target in services for _, target in _chaos_targets()), "no chaos experiment targets a service"


@pytest.mark.parametrize("service", SERVICES)
def test_declared_slos_and_queues_exist(service: str) -> None:
    """The declaration's SLO names are that service's in stack/slo.yaml; the routing keys it consumes
    are the bindings of its queues (services/common/messages.py: queues are named `<service>.…`)."""
    from services.common import messages

    spec = registry.spec(service)
    slos = {
        s["name"]: s["service"] for s in yaml.safe_load((settings.STACK_DIR / "slo.yaml").read_text())["slos"]
    }
    for name in spec.slos:
        assert slos.get(name) == service, f"{service}: SLO {name} is not {service}'s in stack/slo.yaml"
    assert set(spec.slos) == {name for name, owner in slos.items() if owner == service}, f"{service}: SLOs"
    bound = {
        key for queue in messages.QUEUES if queue.name.startswith(f"{service}.") for key in queue.routing_keys
    }
    assert set(spec.queues.consumes) == bound, f"{service}: queues.consumes vs its queues' bindings {bound}"
    assert set(spec.queues.publishes) <= set(messages.SCHEMAS), f"{service}: publishes an unknown routing key"
