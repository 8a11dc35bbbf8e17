"""Static checks of the deployment files, runnable without a Docker engine or a Nix store.

The compose file is read the way ``docker compose config`` reads it (YAML merge keys, ``${VAR}``
interpolation from ``stack/.env``) and then held to the official compose-spec schema and to the project's
invariants. The JSON schemas are the ones ``check-jsonschema`` vendors (read as files: its CLI is not
needed).
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from testbed import settings

COMPOSE_FILE = settings.STACK_DIR / "compose.yaml"
WORKFLOWS_DIR = settings.REPO_ROOT / ".github" / "workflows"

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, $VAR; "$$" is a literal "$".
_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)
# An exact image reference: registry/repo:tag where the tag names a release (digits), never "latest".
_PINNED_TAG = re.compile(r"^[\w.\-/:]+:v?\d+(\.\d+)+[\w.\-]*(@sha256:[0-9a-f]{64})?$")


class InterpolationError(ValueError):
    pass


def referenced_variables(node: Any) -> set[str]:
    """Every variable interpolated anywhere in a parsed YAML tree (comments are not looked at)."""
    if isinstance(node, str):
        matches = _VARIABLE.finditer(node)
        return {m.group("braced") or m.group("bare") for m in matches if not m.group("escaped")}
    if isinstance(node, list):
        return set().union(*(referenced_variables(item) for item in node)) if node else set()
    if isinstance(node, dict):
        return set().union(*(referenced_variables(v) for v in node.values())) if node else set()
    return set()


def load_compose_raw(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The compose file as YAML (merge keys applied), before interpolation."""
    return yaml.safe_load(path.read_text())


def interpolate(value: str, env: Mapping[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("braced") or match.group("bare")
        op, arg = match.group("op"), match.group("arg") or ""
        current = env.get(name)
        missing = current is None or (current == "" and op is not None and op.startswith(":"))
        if op in (":?", "?") and missing:
            raise InterpolationError(f"${{{name}}} is not set: {arg}")
        if op in (":-", "-") and missing:
            return arg
        return current or ""

    return _VARIABLE.sub(substitute, value)


def _interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_interpolate_tree(item, env) for item in node]
    if isinstance(node, dict):
        return {key: _interpolate_tree(value, env) for key, value in node.items()}
    return node


def load_compose(env: Mapping[str, str], path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The compose model after YAML merge keys and interpolation, as ``docker compose config`` sees it."""
    return _interpolate_tree(load_compose_raw(path), env)


@cache
def vendored_schema(name: str) -> dict[str, Any]:
    """A JSON schema vendored by check-jsonschema (``compose-spec``, ``github-workflows``...)."""
    spec = importlib.util.find_spec("check_jsonschema")
    if spec is None or spec.origin is None:
        raise RuntimeError("check-jsonschema (a dev dependency) is missing: run `uv sync --frozen`")
    path = Path(spec.origin).parent / "builtin_schemas" / "vendor" / f"{name}.json"
    return json.loads(path.read_text())


def schema_errors(document: Any, schema_name: str) -> list[str]:
    schema = vendored_schema(schema_name)
    validator_class = jsonschema.validators.validator_for(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    ]


def _is_one_off(service: Mapping[str, Any]) -> bool:
    return service.get("restart", "no") == "no"


def invariant_violations(
    model: Mapping[str, Any], images: Mapping[str, str], compose_dir: Path = COMPOSE_FILE.parent
) -> list[str]:
    """The project's rules for the compose stack; ``images`` is ``versions.yaml``'s ``images`` map."""
    problems: list[str] = []
    declared_images = set(images.values())
    elastic_version = str(settings.versions()["elasticsearch"]["version"])
    services: Mapping[str, Any] = model.get("services", {})
    for name, service in services.items():
        image = str(service.get("image", ""))
        if "build" not in service:
            if not _PINNED_TAG.match(image) or image.endswith(":latest"):
                problems.append(f"{name}: image {image!r} is not pinned to an exact release tag")
            if image.split("@", 1)[0] not in declared_images:
                problems.append(f"{name}: image {image!r} is not one of stack/versions.yaml's images")
            if image.startswith("docker.elastic.co/") and not image.split("@", 1)[0].endswith(
                f":{elastic_version}"
            ):
                problems.append(f"{name}: Elastic image {image!r} is not at version {elastic_version}")
        else:
            for arg in ("PYTHON_IMAGE", "UV_IMAGE"):
                base = service["build"].get("args", {}).get(arg)
                if base not in declared_images:
                    problems.append(f"{name}: build arg {arg}={base!r} is not in stack/versions.yaml")
        if not _is_one_off(service):
            if "healthcheck" not in service or service["healthcheck"].get("disable"):
                problems.append(f"{name}: long-running service without a healthcheck")
            if not service.get("deploy", {}).get("resources", {}).get("limits", {}).get("memory"):
                problems.append(f"{name}: no memory limit (deploy.resources.limits.memory)")
        logging = service.get("logging", {})
        if logging.get("driver") != "json-file" or not logging.get("options", {}).get("max-size"):
            problems.append(f"{name}: logs are not rotated (logging: json-file with max-size)")
        for dependency, condition in (service.get("depends_on") or {}).items():
            one_off = _is_one_off(services[dependency])
            wanted = "service_completed_successfully" if one_off else "service_healthy"
            if condition.get("condition") != wanted:
                problems.append(f"{name}: depends_on {dependency} must use condition {wanted}")
        if _is_one_off(service) and not service.get("profiles") and not _adopted(name, services):
            # `docker compose up --wait` would report its successful exit as a failure.
            problems.append(
                f"{name}: one-off job that no long-running service waits for (put it in a profile)"
            )
        for published in service.get("ports", []):
            problems.extend(_port_violations(name, published))
        for mount in service.get("volumes", []):
            source = str(mount).split(":", 1)[0] if isinstance(mount, str) else str(mount.get("source", ""))
            problems.extend(_mount_violations(name, source, compose_dir))
    return problems


def _adopted(job: str, services: Mapping[str, Any]) -> bool:
    return any(
        (service.get("depends_on") or {}).get(job, {}).get("condition") == "service_completed_successfully"
        for name, service in services.items()
        if name != job and not _is_one_off(service)
    )


# Host paths a container may see besides files under stack/: node-exporter reads the host's root.
_HOST_MOUNTS = ("/",)


def _mount_violations(service: str, source: str, compose_dir: Path) -> list[str]:
    if source in _HOST_MOUNTS or not source.startswith(("/", ".", "~")):
        return []  # a named volume
    if Path(source).is_absolute() and Path(source).is_relative_to(compose_dir.resolve()):
        # `docker compose config` has already resolved ./x against the compose directory.
        source = "./" + str(Path(source).relative_to(compose_dir.resolve()))
    if not source.startswith("./") or ".." in Path(source).parts:
        return [f"{service}: bind mount {source!r}: mount files under stack/ (./...) or use a named volume"]
    if not (compose_dir / source).exists():
        return [f"{service}: bind mount {source!r} does not exist (yet) under {compose_dir}"]
    return []


def _port_violations(service: str, published: Any) -> list[str]:
    if isinstance(published, dict):
        if published.get("host_ip") != "127.0.0.1":
            return [f"{service}: port {published} is not bound to 127.0.0.1"]
        return []
    text = str(published)
    parts = text.split(":")
    if len(parts) != 3 or parts[0] != "127.0.0.1":
        return [f"{service}: port {text!r} must be published as 127.0.0.1:<host>:<container>"]
    return []


def load_workflow(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    # PyYAML reads YAML 1.1, where the bare key `on` is the boolean true; GitHub reads YAML 1.2.
    if True in document:
        document["on"] = document.pop(True)
    return document


def load_workflows() -> dict[Path, dict[str, Any]]:
    return {path: load_workflow(path) for path in sorted(WORKFLOWS_DIR.glob("*.y*ml"))}
