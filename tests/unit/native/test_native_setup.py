"""Set-up steps that can be checked without touching the machine's packages."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from testbed import settings
from testbed.native import setup


def test_java_home_refuses_a_bogus_es_java_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ES_JAVA_HOME", str(tmp_path))
    with pytest.raises(setup.SetupError, match=r"ES_JAVA_HOME=.* is not a JDK >= 21"):
        setup.java_home()


def test_java_home_finds_a_recent_jdk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ES_JAVA_HOME", raising=False)
    try:
        home = setup.java_home()
    except setup.SetupError as exc:
        pytest.skip(f"no JDK on this machine: {exc}")
    assert (home / "bin" / "java").exists()


@pytest.mark.skipif(shutil.which("mvn") is None, reason="needs mvn")
def test_corrupt_cached_archive_is_fetched_again(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TESTBED_CACHE_DIR", str(tmp_path))
    archive = setup.elasticsearch_archive()
    archive.write_bytes(b"not a zip")
    messages: list[str] = []
    fetched = setup.fetch_elasticsearch(messages.append)
    assert fetched == archive
    assert setup.sha256_of(archive) == settings.versions()["elasticsearch"]["sha256"]
    assert any("fails its SHA-256 check" in m for m in messages)


def test_missing_packages_are_named() -> None:
    if shutil.which("dpkg-query") is None:
        pytest.skip("no dpkg")
    assert setup.missing_packages(["surely-not-a-debian-package-xyz"]) == ["surely-not-a-debian-package-xyz"]


def test_missing_mvn_is_named_with_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TESTBED_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))  # no mvn on it
    with pytest.raises(setup.SetupError, match=r"mvn not found: apt-get install -y maven"):
        setup.fetch_elasticsearch()
