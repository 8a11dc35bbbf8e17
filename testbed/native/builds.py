"""Prometheus, Alertmanager and the Go exporters, built from the Go module proxy at the compose versions.

``stack/versions.yaml`` declares each engine's version once, as its compose image tag; ``go_builds``
says which Go module (and module zip hash) carries that version and which binaries to build from it.
Each module is built *inside its own module* (its go.mod and go.sum, replace directives included), so
the dependency graph is upstream's release graph: ``go install pkg@version`` refuses modules with
replace directives, and a wrapper module would resolve other dependency versions. Inputs are verified
twice: the module zip against the pinned ``h1:`` hash (and the checksum database, by ``go``), every
dependency against the module's own go.sum (``-mod=readonly``). ``-trimpath``, fixed ldflags and no
VCS stamping make the output depend only on those inputs and the Go toolchain.

The binaries are kept outside the work tree, under the install root (``/opt/testbed/go/<engine>-
<version>`` as root), keyed by a hash of the build spec: a second ``testbed setup`` (or another work
tree on the same machine) reuses them, and a changed spec builds into a new directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from testbed import settings

Progress = Callable[[str], None]

# Bumped when the way binaries are built changes (flags, layout): old cache entries are then rebuilt.
BUILD_SCHEME = 1
MARKER = ".testbed-build.json"
# Where Go is looked for when it is not on PATH (the official tarball's place).
GO_FALLBACKS = (Path("/usr/local/go/bin/go"),)
VERSION_PKG = "github.com/prometheus/common/version"


class BuildError(RuntimeError):
    """A build that cannot go on; the message names the fix."""


@dataclass(frozen=True)
class GoBuild:
    """One engine built from one Go module: ``binaries`` maps each binary to its package in the module."""

    engine: str
    version: str  # the compose image's tag without its "v": what `--version` reports
    module: str
    module_version: str
    h1: str
    binaries: dict[str, str]
    tags: tuple[str, ...]

    @property
    def ldflags(self) -> str:
        # What upstream's promu sets, minus the build host, user and date (they would break reproducibility).
        return " ".join(
            [
                "-s",
                "-w",
                f"-X {VERSION_PKG}.Version={self.version}",
                f"-X {VERSION_PKG}.Revision={self.module_version}",
                f"-X {VERSION_PKG}.Branch=HEAD",
                f"-X {VERSION_PKG}.BuildUser=testbed",
            ]
        )

    @property
    def key(self) -> str:
        """Hash of everything that decides the output, besides the Go toolchain."""
        spec = {
            "scheme": BUILD_SCHEME,
            "module": f"{self.module}@{self.module_version}",
            "h1": self.h1,
            "binaries": self.binaries,
            "tags": self.tags,
            "ldflags": self.ldflags,
        }
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def _image_version(image: str) -> str:
    tag = image.rsplit(":", 1)[-1]
    return tag.removeprefix("v")


def declared_builds() -> dict[str, GoBuild]:
    """Every Go build of ``stack/versions.yaml``, with its version taken from the compose image tag."""
    versions = settings.versions()
    images: dict[str, str] = versions["images"]
    builds: dict[str, GoBuild] = {}
    for engine, spec in versions["go_builds"]["modules"].items():
        version = _image_version(images[spec.get("image", engine)])
        builds[engine] = GoBuild(
            engine=engine,
            version=version,
            module=spec["module"],
            module_version=spec.get("module_version", f"v{version}"),
            h1=spec["h1"],
            binaries=dict(spec["binaries"]),
            tags=tuple(spec.get("tags", ("netgo",))),
        )
    return builds


def go_root() -> Path:
    return _install_root() / "go"


def _install_root() -> Path:
    from testbed.native.setup import install_root  # setup imports this module

    return install_root()


def build_dir(build: GoBuild) -> Path:
    return go_root() / f"{build.engine}-{build.version}-{build.key}"


def _owner(binary: str) -> GoBuild:
    for build in declared_builds().values():
        if binary in build.binaries:
            return build
    raise KeyError(f"no Go build in stack/versions.yaml makes {binary!r}")


def path(name: str) -> Path:
    """Where the built ``name`` is (or will be once `testbed setup` has built it)."""
    return build_dir(_owner(name)) / name


def binary(name: str) -> Path:
    """The built ``name`` (prometheus, promtool, amtool, ...); BuildError naming the fix when absent."""
    build = _owner(name)
    path = build_dir(build) / name
    if not _is_built(build):
        raise BuildError(f"{name} {build.version} is not built here: run `testbed setup` (builds it with Go)")
    return path


def bin_dir() -> Path:
    """One directory with every built binary (symlinks into the versioned build dirs), for PATH."""
    return go_root() / "bin"


def _is_built(build: GoBuild) -> bool:
    directory = build_dir(build)
    marker = directory / MARKER
    if not marker.is_file():
        return False
    try:
        recorded = json.loads(marker.read_text())
    except ValueError:
        return False
    return recorded.get("key") == build.key and all((directory / b).is_file() for b in build.binaries)


# --- Go -------------------------------------------------------------------------------------------


def find_go() -> Path:
    """The Go toolchain (``$GO``, PATH, /usr/local/go); BuildError naming the fix when missing or old."""
    minimum = str(settings.versions()["go_builds"]["go_min"])
    candidates = [os.environ.get("GO"), shutil.which("go"), *map(str, GO_FALLBACKS)]
    found = next((Path(c) for c in candidates if c and Path(c).is_file()), None)
    fix = f"install Go >= {minimum} (https://go.dev/dl, unpacked in /usr/local/go) or set GO=/path/to/go"
    if found is None:
        raise BuildError(f"Go not found: {fix}; it builds Prometheus, Alertmanager and the exporters")
    result = subprocess.run([str(found), "env", "GOVERSION"], capture_output=True, text=True, check=False)
    match = re.match(r"go(\d+)\.(\d+)", result.stdout.strip())
    have = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    want = tuple(int(part) for part in minimum.split(".")[:2])
    if have < want:
        raise BuildError(f"{found} is {result.stdout.strip() or 'not a working Go'}: {fix}")
    return found


def _go_env(go: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "CGO_ENABLED": "0",
        "GOFLAGS": "-mod=readonly -buildvcs=false",  # go.sum decides; no VCS stamp
        "GOTOOLCHAIN": "local",  # never download another toolchain
        "GOWORK": "off",
    }
    env["PATH"] = f"{go.parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _parallelism() -> str:
    """``-p``: one package at a time on a shared machine (set TESTBED_GO_BUILD_JOBS), all cores in CI."""
    configured = os.environ.get("TESTBED_GO_BUILD_JOBS")
    if configured:
        return configured
    return str(os.cpu_count() or 1) if os.environ.get("CI") else "1"


def _download(go: Path, build: GoBuild, env: dict[str, str]) -> Path:
    """The module's source directory in the module cache, its zip checked against the pinned h1 hash."""
    result = subprocess.run(
        [str(go), "mod", "download", "-json", f"{build.module}@{build.module_version}"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    try:
        info = json.loads(result.stdout)
    except ValueError:
        info = {"Error": (result.stderr.strip().splitlines() or ["no output"])[-1]}
    if result.returncode != 0 or info.get("Error"):
        raise BuildError(
            f"cannot download {build.module}@{build.module_version} ({info.get('Error')}): "
            "is the Go module proxy reachable (GOPROXY)?"
        )
    if info.get("Sum") != build.h1:
        raise BuildError(
            f"{build.module}@{build.module_version} hashes to {info.get('Sum')}, stack/versions.yaml pins "
            f"{build.h1}: check the pin (go mod download -json) and the module proxy"
        )
    return Path(info["Dir"])


def _go_build(go: Path, source: Path, package: str, out: Path, build: GoBuild, env: dict[str, str],
              progress: Progress) -> None:  # fmt: skip
    command = [
        "nice", "-n", "19", str(go), "build", "-v", "-p", _parallelism(), "-trimpath",
        "-tags", ",".join(build.tags), "-ldflags", build.ldflags, "-o", str(out), package,
    ]  # fmt: skip
    started = time.monotonic()
    last_report = started
    compiled = 0
    tail: list[str] = []
    with subprocess.Popen(command, cwd=source, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True) as process:  # fmt: skip
        assert process.stderr is not None
        for line in process.stderr:
            tail = [*tail[-9:], line.rstrip()]
            compiled += 1  # `go build -v` names each package it compiles (cached ones are not named)
            if time.monotonic() - last_report >= 30:
                last_report = time.monotonic()
                progress(f"  {out.name}: {compiled} packages compiled, {last_report - started:.0f} s")
    if process.returncode != 0:
        raise BuildError(f"go build of {out.name} failed: " + " | ".join(tail[-5:]))
    progress(f"  {out.name} built in {time.monotonic() - started:.0f} s")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One builder per engine and version on the machine (other work trees share the cache)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_built(build: GoBuild, go: Path, progress: Progress) -> Path:
    """Build ``build``'s binaries unless the cache has them; returns their directory."""
    directory = build_dir(build)
    if _is_built(build):
        return directory
    with _locked(go_root() / f".{directory.name}.lock"):
        if _is_built(build):  # another work tree built it while we waited
            return directory
        env = _go_env(go)
        names = ", ".join(build.binaries)
        progress(f"building {build.engine} {build.version} ({names}) from the Go module proxy")
        source = _download(go, build, env)
        staging = directory.with_name(directory.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for name, package in build.binaries.items():
            _go_build(go, source, package, staging / name, build, env, progress)
        go_version = subprocess.run([str(go), "env", "GOVERSION"], capture_output=True, text=True,
                                    check=False).stdout.strip()  # fmt: skip
        record = {"key": build.key, "module": f"{build.module}@{build.module_version}", "h1": build.h1,
                  "go": go_version, "ldflags": build.ldflags, "tags": list(build.tags)}  # fmt: skip
        (staging / MARKER).write_text(json.dumps(record, indent=2) + "\n")
        for path in [staging, *staging.iterdir()]:
            path.chmod(0o755 if path.is_dir() or path.name != MARKER else 0o644)
        shutil.rmtree(directory, ignore_errors=True)
        staging.replace(directory)
    return directory


def _link_bin(builds: list[GoBuild]) -> None:
    links = bin_dir()
    links.mkdir(parents=True, exist_ok=True)
    links.chmod(0o755)
    for build in builds:
        for name in build.binaries:
            link = links / name
            temporary = links / f".{name}.new"
            temporary.unlink(missing_ok=True)
            temporary.symlink_to(build_dir(build) / name)
            temporary.replace(link)


def ensure_all(progress: Progress) -> dict[str, Path]:
    """Every declared build, cached or built now (promtool and amtool first: the unit tests need them)."""
    builds = list(declared_builds().values())
    pending = [b for b in builds if not _is_built(b)]
    if pending:
        go = find_go()
        progress(
            f"{len(pending)} Go build(s) not cached yet: the first build takes 15-40 min on 2 cores, "
            f"depending on load (Prometheus is most of it); cached afterwards under {go_root()}"
        )
        for build in pending:
            ensure_built(build, go, progress)
    _link_bin(builds)
    return {build.engine: build_dir(build) for build in builds}
