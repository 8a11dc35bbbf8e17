"""`testbed setup`: make this machine able to run the native stack. Idempotent.

Debian packages (their system services kept from starting: the stack runs private instances), the
unprivileged ``testbed`` user, a JDK >= 21, the Elasticsearch integ-test-zip from Maven Central,
verified against the SHA-256 pinned in ``stack/versions.yaml`` and unpacked outside the work tree, and
Prometheus, Alertmanager and the Go exporters built at the compose versions (testbed/native/builds.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

from testbed import settings
from testbed.native import builds

STACK_USER = "testbed"
JVM_ROOT = Path("/usr/lib/jvm")
# What each system service is called in Debian, to stop and disable any that an install started.
DEBIAN_SERVICES = (
    "prometheus",
    "prometheus-alertmanager",
    "prometheus-node-exporter",
    "prometheus-postgres-exporter",
    "prometheus-elasticsearch-exporter",
    "prometheus-blackbox-exporter",
    "postgresql",
    "rabbitmq-server",
    "rsyslog",
)
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")

Progress = Callable[[str], None]


class SetupError(RuntimeError):
    """A set-up step that cannot go on; the message names the fix."""


def _quiet(_: str) -> None:
    pass


# --- the stack user -----------------------------------------------------------------------------


def is_root() -> bool:
    return os.geteuid() == 0


def stack_user() -> str | None:
    """The user components run as: ``testbed`` when we are root, else ourselves (None)."""
    return STACK_USER if is_root() else None


def ensure_stack_user(progress: Progress = _quiet) -> None:
    """Create the unprivileged system user that runs every component (root only)."""
    if not is_root():
        return
    try:
        pwd.getpwnam(STACK_USER)
        return
    except KeyError:
        pass
    progress(f"creating system user {STACK_USER}")
    subprocess.run(
        [
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            STACK_USER,
        ],
        check=True,
    )


def chown_to_stack_user(*paths: Path) -> None:
    """Give ``paths`` (recursively) to the stack user, so components can read and write them."""
    user = stack_user()
    if user is None:
        return
    entry = pwd.getpwnam(user)
    for top in paths:
        if not top.exists():
            continue
        os.chown(top, entry.pw_uid, entry.pw_gid)
        for root, dirs, files in os.walk(top):
            for name in dirs + files:
                # Renders run in parallel: a temporary file may be renamed away under the walk.
                with contextlib.suppress(FileNotFoundError):
                    os.chown(Path(root) / name, entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def _blocked_ancestors(path: Path) -> list[Path]:
    """Directories above ``path`` that other users cannot traverse."""
    return [parent for parent in path.parents if not parent.stat().st_mode & 0o001]


def ensure_python_reachable(progress: Progress = _quiet) -> None:
    """Let the stack user run this project's Python (the services run with it as that user).

    pyenv and uv keep interpreters under root's home, which is 0700: grant traverse (o+x, not read)
    on each blocking directory above the interpreter and the work tree.
    """
    if not is_root():
        return

    for target in (Path(sys.executable).resolve(), settings.REPO_ROOT):
        for directory in _blocked_ancestors(target):
            directory.chmod(directory.stat().st_mode | 0o001)
            progress(f"{directory}: traverse (o+x) granted so that the {STACK_USER} user reaches {target}")


def python_reachable() -> bool:

    return not any(_blocked_ancestors(p) for p in (Path(sys.executable).resolve(), settings.REPO_ROOT))


# --- Debian packages ----------------------------------------------------------------------------


def debian_packages() -> list[str]:
    return list(settings.versions()["debian_packages"])


def missing_packages(packages: list[str]) -> list[str]:
    missing = []
    for package in packages:
        result = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, check=False
        )
        if "install ok installed" not in result.stdout:
            missing.append(package)
    return missing


# Tools the set-up itself uses (not part of the stack): Maven fetches Elasticsearch.
SETUP_TOOL_PACKAGES = {"maven": "mvn"}


def install_packages(progress: Progress = _quiet) -> None:
    packages = debian_packages()
    packages += [package for package, tool in SETUP_TOOL_PACKAGES.items() if shutil.which(tool) is None]
    if shutil.which("dpkg-query") is None:
        raise SetupError(
            f"no dpkg here: install these Debian packages (or their equivalents): {' '.join(packages)}"
        )
    missing = missing_packages(packages)
    if not missing:
        progress("Debian packages already installed")
        return
    if not is_root() or shutil.which("apt-get") is None:
        raise SetupError(
            f"missing packages; run as root: apt-get update && apt-get install -y {' '.join(missing)}"
        )
    progress(f"installing {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # A policy-rc.d exiting 101 tells invoke-rc.d not to start the packages' system services.
    placed_policy = not POLICY_RC_D.exists()
    if placed_policy:
        POLICY_RC_D.write_text(
            "#!/bin/sh\n# testbed setup: do not start services while installing\nexit 101\n"
        )
        POLICY_RC_D.chmod(0o755)
    try:
        subprocess.run(["apt-get", "update"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", *missing], check=True, env=env)
    finally:
        if placed_policy:
            POLICY_RC_D.unlink(missing_ok=True)
    stop_system_services(progress)


def stop_system_services(progress: Progress = _quiet) -> None:
    """Stop and disable the packages' own services if something started them anyway."""
    if not is_root():
        return
    has_systemd = Path("/run/systemd/system").is_dir()
    for service in DEBIAN_SERVICES:
        if has_systemd:
            subprocess.run(["systemctl", "disable", "--now", service], capture_output=True, check=False)
        elif shutil.which("service") and Path(f"/etc/init.d/{service}").exists():
            subprocess.run(["service", service, "stop"], capture_output=True, check=False)
            if shutil.which("update-rc.d"):
                subprocess.run(["update-rc.d", service, "disable"], capture_output=True, check=False)
    progress("system services of the packages stopped and disabled")


# --- Java ---------------------------------------------------------------------------------------


def _java_major(java_home: Path) -> int | None:
    release = java_home / "release"
    if release.is_file():
        match = re.search(r'^JAVA_VERSION="(\d+)', release.read_text(), re.MULTILINE)
        if match:
            return int(match.group(1))
    java = java_home / "bin" / "java"
    if not java.is_file():
        return None
    result = subprocess.run([str(java), "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)', result.stderr)
    return int(match.group(1)) if match else None


def java_home() -> Path:
    """ES_JAVA_HOME, else the newest JDK >= java_min under /usr/lib/jvm; else SetupError naming the fix."""
    minimum = int(settings.versions()["elasticsearch"]["java_min"])
    env = os.environ.get("ES_JAVA_HOME")
    if env:
        major = _java_major(Path(env))
        if major is None or major < minimum:
            raise SetupError(f"ES_JAVA_HOME={env} is not a JDK >= {minimum}: point it at one or unset it")
        return Path(env)
    candidates: list[tuple[int, Path]] = []
    if JVM_ROOT.is_dir():
        for home in JVM_ROOT.iterdir():
            if home.is_symlink():
                continue
            major = _java_major(home)
            if major is not None and major >= minimum:
                candidates.append((major, home))
    if not candidates:
        raise SetupError(
            f"no JDK >= {minimum} found: install one under {JVM_ROOT} "
            f"(e.g. Temurin {minimum}+) or set ES_JAVA_HOME"
        )
    return max(candidates)[1]


# --- Elasticsearch ------------------------------------------------------------------------------


def _es_spec() -> dict[str, str]:
    return {k: str(v) for k, v in settings.versions()["elasticsearch"].items()}


def install_root() -> Path:
    """Where unpacked distributions live: readable by the stack user (root's home is not)."""
    env = os.environ.get("TESTBED_INSTALL_DIR")
    if env:
        return Path(env).resolve()
    return Path("/opt/testbed") if is_root() else settings.cache_dir() / "dist"


def elasticsearch_home() -> Path:
    return install_root() / f"elasticsearch-{_es_spec()['version']}"


def elasticsearch_archive() -> Path:
    return settings.cache_dir() / f"elasticsearch-{_es_spec()['version']}.zip"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _maven_fetch(target_dir: Path, force: bool) -> None:
    if shutil.which("mvn") is None:
        raise SetupError(
            "mvn not found: apt-get install -y maven (it fetches Elasticsearch from Maven Central)"
        )
    plugin = settings.versions()["maven_dependency_plugin"]
    spec = _es_spec()
    group, artifact, version, packaging = spec["maven_artifact"].split(":")
    command = [
        "mvn",
        "-B",
        "-q",
        f"org.apache.maven.plugins:maven-dependency-plugin:{plugin}:copy",
        f"-Dartifact={group}:{artifact}:{version}:{packaging}",
        f"-DoutputDirectory={target_dir}",
        "-Dmdep.overWriteReleases=true",
    ]
    if force:
        # A corrupt copy in ~/.m2 would be copied again: drop it so Maven downloads afresh.
        local = Path.home() / ".m2/repository" / group.replace(".", "/") / artifact / version
        shutil.rmtree(local, ignore_errors=True)
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
        raise SetupError(
            "mvn could not fetch Elasticsearch (is Maven Central reachable?): " + " | ".join(tail)
        )


def fetch_elasticsearch(progress: Progress = _quiet) -> Path:
    """The verified archive in the cache dir; fetched with Maven, re-fetched once if corrupt."""
    spec = _es_spec()
    archive = elasticsearch_archive()
    archive.parent.mkdir(parents=True, exist_ok=True)
    for attempt in (1, 2):
        if archive.exists() and sha256_of(archive) == spec["sha256"]:
            return archive
        if archive.exists():
            progress(f"cached {archive.name} fails its SHA-256 check: fetching it again")
            archive.unlink()
        progress(f"fetching {spec['maven_artifact']} with Maven")
        _maven_fetch(archive.parent, force=attempt == 2)
        fetched = archive.parent / f"elasticsearch-{spec['version']}.zip"
        if fetched != archive and fetched.exists():
            fetched.replace(archive)
    raise SetupError(
        f"{archive} does not match the pinned SHA-256 {spec['sha256']} after a re-download: "
        "check stack/versions.yaml and the Maven mirror"
    )


def unpack_elasticsearch(archive: Path, progress: Progress = _quiet) -> Path:
    home = elasticsearch_home()
    marker = home / ".testbed-sha256"
    expected = _es_spec()["sha256"]
    if marker.is_file() and marker.read_text().strip() == expected:
        return home
    progress(f"unpacking Elasticsearch into {home}")
    staging = home.with_name(home.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            extracted = Path(zf.extract(info, staging))
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                extracted.chmod(mode)
    inner = staging / home.name
    for script in (inner / "bin").iterdir():
        script.chmod(0o755)
    # The JDK-less integ-test-zip ships no bundled jdk: ES_JAVA_HOME is set at run time.
    shutil.rmtree(home, ignore_errors=True)
    inner.replace(home)
    shutil.rmtree(staging, ignore_errors=True)
    for path in [home, *home.rglob("*")]:
        path.chmod(path.stat().st_mode | (0o755 if path.is_dir() else 0o444))
    marker.write_text(expected + "\n")
    return home


def install_elasticsearch(progress: Progress = _quiet) -> Path:
    return unpack_elasticsearch(fetch_elasticsearch(progress), progress)


# --- all of it ----------------------------------------------------------------------------------


def run_setup(progress: Progress = _quiet) -> None:
    """Every step, in order; each is a no-op when already done."""
    # First: a missing JDK >= 21 (Debian 12 ships 17) is one line before anything is installed.
    home = java_home()
    install_packages(progress)
    ensure_stack_user(progress)
    ensure_python_reachable(progress)
    progress(f"Java: {home}")
    es_home = install_elasticsearch(progress)
    progress(f"Elasticsearch: {es_home}")
    try:
        built = builds.ensure_all(progress)
    except builds.BuildError as exc:
        raise SetupError(str(exc)) from None
    progress(f"Prometheus, Alertmanager, exporters: {builds.go_root()} ({', '.join(built)})")
