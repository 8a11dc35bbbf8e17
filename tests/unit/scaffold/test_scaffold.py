"""`testbed service new` in a copy of the repository: the registry picks the new service up and the
guard, its own unit test and the static checks pass with it included, as docs/adding-a-service.md says."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from services import registry
from testbed.scaffold import ScaffoldError, plan
from testbed.settings import REPO_ROOT

GUIDE = REPO_ROOT / "docs" / "adding-a-service.md"
NAME = "loyalty"  # a word no file of the repository uses (the guard also matches by name)
# What must stay green with the new service included (the live ones need a stack: not here).
CHECKS = (
    "tests/unit/services",
    "tests/unit/test_settings.py",
    "tests/unit/metrics/test_metrics_generated.py",
    "tests/deploy/test_deploy_compose_static.py",
)


def _copy_repository(target: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = REPO_ROOT / name.decode()
        if source.is_file():  # a file deleted in the work tree is still listed until committed
            destination = target / name.decode()
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(source.read_bytes())


def _run(copy: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # The copy first on the path: its `services` and `testbed`, not this work tree's.
    environment = {**os.environ, "PYTHONPATH": str(copy)}
    return subprocess.run(
        [sys.executable, *args], cwd=copy, env=environment, capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("repo")
    _copy_repository(copy)
    assert not (copy / "services" / NAME).exists()
    result = _run(copy, "-c", "from testbed.cli import app; app()", "service", "new", NAME)
    assert result.returncode == 0, result.stderr
    return copy


@pytest.mark.slow
def test_the_registry_finds_the_new_service(scaffolded: Path) -> None:
    found = registry.discover(scaffolded / "services")
    assert NAME in found and found[NAME].ports
    assert set(registry.names()) < set(found)


@pytest.mark.slow
def test_guard_unit_and_static_checks_pass_with_it(scaffolded: Path) -> None:
    openapi = _run(scaffolded, "-m", "services.openapi", "--check")
    assert openapi.returncode == 0, openapi.stderr
    result = _run(
        scaffolded, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "not compose_stack", *CHECKS
    )
    outcome = [
        line for line in result.stdout.splitlines() if re.search(r"^(FAILED|ERROR)| (passed|failed)", line)
    ]
    assert result.returncode == 0, "\n".join(outcome)
    # The guard ran for the new service, in each of its checks.
    assert (
        f"test_service_{NAME}.py"
        in _run(scaffolded, "-m", "pytest", "--co", "-q", "tests/unit/services").stdout
    )
    listed = _run(
        scaffolded, "-m", "pytest", "--co", "-q", "tests/unit/services/test_registry_wiring.py"
    ).stdout
    assert len(re.findall(rf"\[{NAME}\]", listed)) >= 7, listed


@pytest.mark.slow
def test_the_guide_lists_what_the_scaffold_writes(scaffolded: Path) -> None:
    guide = GUIDE.read_text()
    assert "uv run testbed service new shipping" in guide
    for written in re.findall(
        r"`(services/shipping/[^`]+|tests/unit/services/test_service_shipping\.py)`", guide
    ):
        path = scaffolded / written.replace("shipping", NAME)
        assert path.exists(), f"docs/adding-a-service.md lists {written}, the scaffold did not write it"
    assert (scaffolded / "services" / NAME / "openapi.json").exists()
    compose = (scaffolded / "stack" / "compose.yaml").read_text()
    assert f'"compose-service", "{NAME}", "0"' in compose


def test_bad_names_and_taken_ports_are_one_clear_error() -> None:
    with pytest.raises(ScaffoldError, match="lowercase"):
        plan(REPO_ROOT, "Shipping-2")
    with pytest.raises(ScaffoldError, match="already exists"):
        plan(REPO_ROOT, "orders")
    with pytest.raises(ScaffoldError, match="port 19084 is taken"):
        plan(REPO_ROOT, "fresh", port=19084)  # a whole thousand from the alert sink's 18084
