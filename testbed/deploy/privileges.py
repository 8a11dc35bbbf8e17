"""Static reasoning about stack/compose.yaml that the compose loader cannot do: who can write what, who
receives which secret, what Prometheus scrapes. Each function returns problems (empty = fine), so a test
can show it fails on a broken model.

Facts about the upstream images (which uid a process ends up as, whether the entrypoint drops root with
``gosu``) are written here, not read from the images: there is no Docker engine to ask.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


# How each upstream image runs its main process when compose sets no `user:`. `gosu`: the entrypoint
# starts as root and execs as uid:gid through gosu, which re-reads the groups from /etc/group: a
# `group_add` is lost. Otherwise the image's USER runs directly and keeps `group_add`.
@dataclass(frozen=True)
class ImageProcess:
    uid: int
    gid: int
    gosu: bool = False


IMAGE_PROCESSES: dict[str, ImageProcess] = {
    "postgres": ImageProcess(999, 999, gosu=True),
    "rabbitmq": ImageProcess(999, 999, gosu=True),
    "elasticsearch/elasticsearch": ImageProcess(1000, 0),
    "logstash/logstash": ImageProcess(1000, 1000),
    "kibana/kibana": ImageProcess(1000, 0),
    "grafana/grafana": ImageProcess(472, 0),
    "prom/prometheus": ImageProcess(65534, 65534),
    "prom/alertmanager": ImageProcess(65534, 65534),
    "prom/node-exporter": ImageProcess(65534, 65534),
    "prom/blackbox-exporter": ImageProcess(65534, 65534),
    "prometheuscommunity/postgres-exporter": ImageProcess(65534, 65534),
    "prometheuscommunity/elasticsearch-exporter": ImageProcess(65534, 65534),
}


@dataclass(frozen=True)
class Credentials:
    uid: int
    gid: int
    groups: frozenset[int]


@dataclass(frozen=True)
class Owner:
    uid: int
    gid: int
    mode: int


def _repository(image: str) -> str:
    """``registry/name`` without tag or digest."""
    name = image.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]


def dockerfile_user(dockerfile: str) -> tuple[int, int]:
    users = re.findall(r"^USER (\d+):(\d+)", dockerfile, re.MULTILINE)
    if not users:
        raise ValueError("the Dockerfile's runtime USER must be numeric uid:gid")
    uid, gid = users[-1]
    return int(uid), int(gid)


def dockerfile_ownership(dockerfile: str) -> dict[str, Owner]:
    """Path -> owner and mode of the directories the runtime stage makes (mkdir -p, chown -R, chmod)."""
    runtime = dockerfile.rsplit("\nFROM ", 1)[-1]
    text = runtime.replace("\\\n", " ")
    made = [p for m in re.findall(r"mkdir -p ([^&\n]+)", text) for p in m.split()]
    owners: dict[str, Owner] = {path: Owner(0, 0, 0o755) for path in made}
    for owner, root in re.findall(r"chown -R (\d+:\d+) (\S+)", text):
        uid, gid = (int(part) for part in owner.split(":"))
        for path, current in owners.items():
            if path == root or path.startswith(root.rstrip("/") + "/"):
                owners[path] = Owner(uid, gid, current.mode)
    for mode, paths in re.findall(r"chmod (\d{3,4}) ([^&\n]+)", text):
        for path in paths.split():
            if path in owners:
                owners[path] = Owner(owners[path].uid, owners[path].gid, int(mode, 8))
    return owners


def credentials(service: Mapping[str, Any], project_user: tuple[int, int]) -> Credentials | None:
    """The uid, gid and groups of the service's main process; None for an image this module does not know."""
    group_add = frozenset(int(g) for g in service.get("group_add", []))
    if "user" in service:
        # Started as that user: no entrypoint privilege drop, so group_add holds.
        uid, _, gid = str(service["user"]).partition(":")
        return Credentials(int(uid), int(gid or uid), group_add)
    if "build" in service:
        return Credentials(project_user[0], project_user[1], group_add)
    process = next(
        (p for name, p in IMAGE_PROCESSES.items() if _repository(str(service["image"])).endswith(name)), None
    )
    if process is None:
        return None
    return Credentials(process.uid, process.gid, frozenset() if process.gosu else group_add)


def can_write(who: Credentials, owner: Owner) -> bool:
    if who.uid == 0:
        return True
    if who.uid == owner.uid:
        return bool(owner.mode & 0o200)
    if owner.gid == who.gid or owner.gid in who.groups:
        return bool(owner.mode & 0o020)
    return bool(owner.mode & 0o002)


def _mounts(service: Mapping[str, Any]) -> list[tuple[str, str, bool]]:
    """(source, target, read_only) of the short- or long-syntax volumes."""
    result = []
    for mount in service.get("volumes", []):
        if isinstance(mount, dict):
            result.append((str(mount.get("source", "")), str(mount["target"]), bool(mount.get("read_only"))))
        else:
            parts = str(mount).split(":")
            result.append((parts[0], parts[1], len(parts) > 2 and "ro" in parts[2].split(",")))
    return result


def _waits_for_completion(service: Mapping[str, Any], job: str) -> bool:
    depends = service.get("depends_on", {})
    if isinstance(depends, list):
        return False
    return depends.get(job, {}).get("condition") == "service_completed_successfully"


def volume_write_problems(model: Mapping[str, Any], dockerfile: str, populator: str = "prepare") -> list[str]:
    """Every container can write each volume it mounts read-write that the project image populates.

    A named volume takes the ownership of the first container mounting it: ``populator`` (the project
    image) mounts the shared log/snapshot volumes first, so every other writer must wait for it to
    complete, and then needs owner, group (kept only without gosu) or other write permission.
    """
    services = model["services"]
    owners = dockerfile_ownership(dockerfile)
    project_user = dockerfile_user(dockerfile)
    populated = {
        source: owners[target]
        for source, target, _ in _mounts(services[populator])
        if target in owners and source in model.get("volumes", {})
    }
    problems = []
    for name, service in services.items():
        if name == populator:
            continue
        for source, target, read_only in _mounts(service):
            if read_only or source not in populated:
                continue
            if not _waits_for_completion(service, populator):
                problems.append(
                    f"{name}: writes volume {source} but does not wait for {populator} "
                    "(service_completed_successfully), which gives it its owner and mode"
                )
            who = credentials(service, project_user)
            if who is None:
                problems.append(f"{name}: unknown image {service.get('image')}: add it to IMAGE_PROCESSES")
                continue
            owner = populated[source]
            if not can_write(who, owner):
                problems.append(
                    f"{name}: uid {who.uid} gid {who.gid} groups {sorted(who.groups)} cannot write {target} "
                    f"(volume {source}: {owner.uid}:{owner.gid} mode {owner.mode:o})"
                )
    return problems


def scrape_targets(prometheus_yml: str) -> list[tuple[str, str]]:
    """(job, host:port) of every address Prometheus connects to: targets, relabelled addresses, alerting."""
    config = yaml.safe_load(prometheus_yml)
    found: list[tuple[str, str]] = []
    for job in config.get("scrape_configs", []):
        relabelled = [
            r["replacement"] for r in job.get("relabel_configs", []) if r.get("target_label") == "__address__"
        ]
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                if relabelled:
                    continue  # probed through the exporter: the URL is the probe's, checked elsewhere
                found.append((job["job_name"], str(target)))
        found += [(job["job_name"], str(address)) for address in relabelled]
    for manager in config.get("alerting", {}).get("alertmanagers", []):
        for static in manager.get("static_configs", []):
            found += [("alerting", str(target)) for target in static["targets"]]
    return found


def target_problems(targets: list[tuple[str, str]], listening: Mapping[str, set[int]]) -> list[str]:
    """Each target's host must be a service of the backend listening on that port."""
    problems = []
    for job, address in targets:
        host, _, port = address.rpartition(":")
        if host not in listening:
            problems.append(f"job {job}: {address}: {host} is not run by this backend")
        elif int(port) not in listening[host]:
            problems.append(f"job {job}: {address}: {host} does not listen on {port}")
    return problems


def received_secrets(
    model: Mapping[str, Any], name: str, env: Mapping[str, str], variables: set[str]
) -> set[str]:
    """Secret variables (of ``variables``) whose value the container gets: environment, env_file, secrets."""
    service = model["services"][name]
    received: set[str] = set()
    if service.get("env_file"):
        received |= variables  # the whole stack/.env (what testbed init writes holds every secret)
    environment = service.get("environment", {})
    values = (
        environment.values() if isinstance(environment, dict) else [e.partition("=")[2] for e in environment]
    )
    received |= {v for v in variables if env.get(v) and any(env[v] in str(value) for value in values)}
    for secret in service.get("secrets", []):
        source = secret if isinstance(secret, str) else secret["source"]
        variable = model.get("secrets", {}).get(source, {}).get("environment")
        if variable:
            received.add(variable)
    return received


def project_reads(name: str, service: Mapping[str, Any], variables: set[str]) -> set[str]:
    """Secret variables the project image's code reads in this container, found by running that code.

    Each secret gets a unique marker value; a service's reads are the markers in the command and
    environment of the very component the container execs (``testbed compose-service``); ``prepare``'s
    are the secrets its code touches while writing into a scratch directory; ``setup``'s are the
    superuser's and those of the users it creates (stack/elasticsearch/security).
    """
    import tempfile

    from testbed.deploy import runtime, setup
    from testbed.deploy.envfile import secret_variable
    from testbed.logs import layout
    from testbed.secrets import Secrets

    markers = {variable: f"marker-{variable}-marker" for variable in variables}
    command = [str(part) for part in service.get("command", [])]
    if command[:2] == ["testbed", "compose-service"]:
        ctx = runtime.compose_context(markers)
        component = runtime.service_component(ctx, command[2], int(command[3]))
        texts = [*component.command, *component.environment.values()]
        return {v for v, marker in markers.items() if any(marker in text for text in texts)}
    if command[:3] == ["testbed", "compose-setup", "prepare"]:
        touched: set[str] = set()

        class Recording(Secrets):
            def __getattribute__(self, attribute: str) -> Any:
                if attribute in Secrets.model_fields:
                    touched.add(secret_variable(attribute))
                return super().__getattribute__(attribute)

        with tempfile.TemporaryDirectory() as scratch:
            base = runtime.compose_context(markers)
            recording = Recording(**base.secrets.model_dump())
            touched.clear()
            ctx = type(base)(
                mode=base.mode, state_dir=Path(scratch), ports=base.ports, secrets=recording, hosts=base.hosts
            )
            setup.prepare(ctx)
        return touched & variables
    if command[:3] == ["testbed", "compose-setup", "databases"]:
        ctx = runtime.compose_context(markers)
        from testbed.native.services import admin_dsn, stores

        texts = [admin_dsn(ctx), *(store.password for store in stores(ctx).values())]
        return {v for v, marker in markers.items() if any(marker in text for text in texts)}
    if command[:2] == ["testbed", "compose-setup"]:
        users = {secret_variable(u["password_secret"]) for u in layout.users().values()}
        return ({secret_variable("elastic_password")} | users) & variables
    raise ValueError(f"{name}: no rule to find what `{' '.join(command)}` reads")
