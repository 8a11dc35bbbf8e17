"""The Go builds of Prometheus, Alertmanager and the exporters: declared once, verified, cached."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest

from testbed import settings
from testbed.native import builds

# The compose images' versions, written out: a change of stack/versions.yaml must be a decision.
EXPECTED_VERSIONS = {
    "prometheus": "3.5.0",
    "alertmanager": "0.28.1",
    "node_exporter": "1.9.1",
    "postgres_exporter": "0.17.1",
    "elasticsearch_exporter": "1.9.0",
    "blackbox_exporter": "0.27.0",
}


def test_each_engine_is_built_at_its_compose_image_version() -> None:
    declared = builds.declared_builds()
    assert {name: b.version for name, b in declared.items()} == EXPECTED_VERSIONS
    images = settings.versions()["images"]
    for name, build in declared.items():
        assert images[name].endswith(f":v{build.version}"), name


def test_prometheus_module_version_is_the_one_of_its_release() -> None:
    # Prometheus 3.MINOR.PATCH is published as Go module v0.3<MINOR:02>.PATCH.
    build = builds.declared_builds()["prometheus"]
    major, minor, patch = (int(part) for part in build.version.split("."))
    assert build.module_version == f"v0.{major * 100 + minor}.{patch}"


def test_no_distribution_package_shadows_a_built_engine() -> None:
    packages = " ".join(settings.versions()["debian_packages"])
    assert "prometheus" not in packages


def test_missing_go_is_one_line_naming_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("GO", raising=False)
    monkeypatch.setattr(builds, "GO_FALLBACKS", (tmp_path / "go",))
    with pytest.raises(builds.BuildError, match=r"^Go not found: install Go >= 1\.23 .* or set GO=") as exc:
        builds.find_go()
    assert "\n" not in str(exc.value)


def test_a_module_that_does_not_match_its_pin_is_refused() -> None:
    go = builds.find_go()
    real = builds.declared_builds()["blackbox_exporter"]
    forged = dataclasses.replace(real, h1="h1:" + "A" * 43 + "=")
    with pytest.raises(builds.BuildError, match=r"hashes to h1:.*pins h1:AAAA"):
        builds._download(go, forged, builds._go_env(go))


BINARIES = [
    "prometheus",
    "promtool",
    "alertmanager",
    "amtool",
    "node_exporter",
    "postgres_exporter",
    "elasticsearch_exporter",
    "blackbox_exporter",
]


@pytest.mark.parametrize("binary", BINARIES)
def test_built_binary_reports_the_compose_version(binary: str) -> None:
    path = builds.binary(binary)
    result = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=60, check=False)
    engine = next(name for name, b in builds.declared_builds().items() if binary in b.binaries)
    assert result.returncode == 0, result.stderr
    assert f"version {EXPECTED_VERSIONS[engine]} " in result.stdout + result.stderr


def test_a_second_setup_builds_nothing() -> None:
    messages: list[str] = []
    builds.ensure_all(messages.append)
    assert not [m for m in messages if "building" in m], messages
    for name in ("promtool", "amtool"):
        assert (builds.bin_dir() / name).resolve() == builds.binary(name).resolve()
