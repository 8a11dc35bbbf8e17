"""flake.nix parses and evaluates offline (no nixpkgs here), agrees with flake.lock and versions.json."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from testbed import settings

FLAKE = settings.REPO_ROOT / "flake.nix"
LOCK = settings.REPO_ROOT / "flake.lock"
NIX_INSTANTIATE = shutil.which("nix-instantiate")

needs_nix = pytest.mark.skipif(
    NIX_INSTANTIATE is None, reason="nix-instantiate missing: `testbed setup` installs Debian's nix-bin"
)


def _eval(expression: str) -> Any:
    result = subprocess.run(
        [str(NIX_INSTANTIATE), "--eval", "--strict", "--json", "-E", expression],
        cwd=settings.REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@needs_nix
def test_flake_parses() -> None:
    result = subprocess.run(
        [str(NIX_INSTANTIATE), "--parse", str(FLAKE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


@needs_nix
def test_outputs_take_exactly_the_declared_inputs() -> None:
    flake = _eval(
        "let f = import ./flake.nix; in { inputs = builtins.attrNames f.inputs;"
        " args = builtins.attrNames (builtins.functionArgs f.outputs); }"
    )
    assert sorted([*flake["inputs"], "self"]) == flake["args"]


@needs_nix
def test_lock_pins_every_input_to_a_revision_and_hash() -> None:
    declared = set(_eval("builtins.attrNames (import ./flake.nix).inputs"))
    lock = json.loads(LOCK.read_text())
    assert lock["version"] == 7
    assert set(lock["nodes"]["root"]["inputs"]) == declared
    for name, node in lock["nodes"].items():
        if name == "root":
            continue
        assert len(node["locked"]["rev"]) == 40, name
        assert node["locked"]["narHash"].startswith("sha256-"), name


@needs_nix
def test_lock_honours_the_follows_so_one_nixpkgs_is_used() -> None:
    lock = json.loads(LOCK.read_text())
    for name in ("pyproject-nix", "uv2nix", "pyproject-build-systems"):
        assert lock["nodes"][name]["inputs"]["nixpkgs"] == ["nixpkgs"], name
    nixpkgs_nodes = [n for n in lock["nodes"] if n.startswith("nixpkgs")]
    assert nixpkgs_nodes == ["nixpkgs"]


@needs_nix
def test_nix_reads_the_same_versions_as_python() -> None:
    from_nix = _eval("builtins.fromJSON (builtins.readFile ./stack/versions.json)")
    assert from_nix == settings.versions()


def test_dev_shell_has_the_tools_the_issue_lists() -> None:
    text = FLAKE.read_text()
    for tool in (
        "python312",
        "uv",
        "jdk21_headless",
        "go",  # builds Prometheus, Alertmanager and the exporters at the compose versions
        "grafana",
        "postgresql_15",
        "rabbitmq-server",
        "rsyslog",
        "docker-compose",
        "jq",
        "streamLayeredImage",
    ):
        assert tool in text, tool
