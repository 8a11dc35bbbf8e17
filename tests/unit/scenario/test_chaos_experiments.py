"""Every chaos experiment passes `chaos validate` (syntax, and each activity's function and arguments)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from chaoslib.experiment import ensure_experiment_is_valid
from chaoslib.loader import load_experiment

from testbed.settings import REPO_ROOT

EXPERIMENTS = sorted((REPO_ROOT / "chaos" / "experiments").glob("*.yaml"))
CHAOS = Path(sys.executable).parent / "chaos"
REQUIRED = {
    "service-killed",
    "service-slowed",
    "service-erroring",
    "postgresql-down",
    "rabbitmq-down",
    "elasticsearch-down",
    "shipper-killed",
    "prometheus-restarted",
    "alertmanager-down",
}


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHAOS), "--no-log-file", "--no-version-check", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
        check=False,
    )


def test_catalog_is_complete() -> None:
    assert {p.stem for p in EXPERIMENTS} >= REQUIRED


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_experiment_validates(path: Path) -> None:
    # What `chaos validate` runs, in-process (a subprocess per file costs seconds on a busy machine).
    ensure_experiment_is_valid(load_experiment(str(path)))


def test_chaos_validate_command_accepts_the_catalog() -> None:
    done = _validate(REPO_ROOT / "chaos/experiments/service-killed.yaml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_validate_catches_a_wrong_argument(tmp_path: Path) -> None:
    # Guards the test above: validation must look into our extension's signatures, not only the syntax.
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        (REPO_ROOT / "chaos/experiments/service-slowed.yaml")
        .read_text()
        .replace("latency_ms: 1200", "latency: 1200")
    )
    done = _validate(broken)
    assert done.returncode != 0
    assert "latency" in done.stdout + done.stderr
