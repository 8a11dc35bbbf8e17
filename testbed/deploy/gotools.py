"""Go tools the static checks run (actionlint, the Docker Compose CLI), built once from the Go module
proxy at pinned versions and cached outside the work tree (``~/.cache/testbed/go-tools``).

A missing ``go`` is one line naming the fix, never a silent skip: ``make test`` runs these checks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from testbed import settings

# Pinned here (a test tool, not an engine of the stack): module path, version.
ACTIONLINT = ("github.com/rhysd/actionlint/cmd/actionlint", "v1.7.12")
COMPOSE_BUILD_SCRIPT = settings.STACK_DIR / "docker" / "build-compose-cli.sh"


class ToolUnavailable(RuntimeError):
    """The tool cannot be built here; the message names the fix."""


def tools_dir() -> Path:
    return settings.cache_dir() / "go-tools"


def _go() -> str:
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if go is None:
        raise ToolUnavailable(
            "go is required to build the static checks' tools: install Go >= 1.24 and retry"
        )
    return go


def actionlint() -> Path:
    """The actionlint binary, built with ``go install`` on first use (about a minute of CPU)."""
    module, version = ACTIONLINT
    target = tools_dir() / f"actionlint-{version}"
    binary = target / "actionlint"
    if not binary.exists():
        env = {**os.environ, "GOBIN": str(target), "GOFLAGS": "-trimpath"}
        result = subprocess.run(
            ["nice", "-n", "10", _go(), "install", f"{module}@{version}"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ToolUnavailable(f"building actionlint {version} failed: {result.stderr.strip()[-300:]}")
    return binary


def compose_plugin() -> Path:
    """The Docker Compose v2 plugin (``stack/versions.yaml``'s ``docker_compose``), built by
    stack/docker/build-compose-cli.sh into ``$DOCKER_CONFIG/cli-plugins`` when absent (a few minutes)."""
    plugins = Path(os.environ.get("DOCKER_CONFIG", str(Path.home() / ".docker"))) / "cli-plugins"
    binary = plugins / "docker-compose"
    if not binary.exists():
        _go()
        result = subprocess.run(
            ["bash", str(COMPOSE_BUILD_SCRIPT)], capture_output=True, text=True, check=False
        )
        if result.returncode != 0 or not binary.exists():
            raise ToolUnavailable(f"building the compose CLI failed: {result.stderr.strip()[-300:]}")
    return binary
