"""The CI workflow for users: valid for GitHub, and doing what the issue asks of each job."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from testbed import settings
from testbed.deploy import gotools, validate

CI = validate.WORKFLOWS_DIR / "ci.yml"


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    return validate.load_workflow(CI)


def _runs(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def test_every_workflow_matches_the_github_workflow_schema() -> None:
    workflows = validate.load_workflows()
    assert CI in workflows
    for path, document in workflows.items():
        assert validate.schema_errors(document, "github-workflows") == [], path


def test_schema_check_catches_a_typo(workflow: dict[str, Any]) -> None:
    broken = {**workflow, "jobs": {"x": {"runs-on": "ubuntu-24.04", "stepz": []}}}
    assert validate.schema_errors(broken, "github-workflows")


def test_native_job_runs_make_test(workflow: dict[str, Any]) -> None:
    assert "make test" in _runs(workflow["jobs"]["native"])


def test_every_workflow_passes_actionlint() -> None:
    """GitHub's own rules (expressions, action inputs, job needs, runner labels), beyond the schema."""
    binary = gotools.actionlint()
    result = subprocess.run(
        [str(binary), "-no-color", *map(str, validate.load_workflows())],
        capture_output=True,
        text=True,
        check=False,
        cwd=settings.REPO_ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / ".github" / "workflows" / "bad.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - uses: actions/setup-java@v4\n        with: {java-versio: '21'}\n"
        "      - run: echo ${{ steps.nope.outputs.path }}\n"
    )
    result = subprocess.run(
        [str(gotools.actionlint()), "-no-color", str(broken)], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 1 and "java-versio" in result.stdout


def _step(job: dict[str, Any], uses: str) -> dict[str, Any]:
    found = [step for step in job["steps"] if step.get("uses", "").startswith(uses + "@")]
    assert found, f"no {uses} step"
    return found[0]


def test_native_job_provisions_a_jdk_for_elasticsearch_and_python_312(workflow: dict[str, Any]) -> None:
    """Debian 12 ships JDK 17 and Python 3.11: the job must bring JDK >= 21 and Python 3.12 itself."""
    job = workflow["jobs"]["native"]
    java = _step(job, "actions/setup-java")
    assert java["with"]["distribution"] == "temurin" and int(java["with"]["java-version"]) >= 21
    make_test = next(step for step in job["steps"] if step.get("run", "").strip() == "make test")
    assert make_test["env"]["ES_JAVA_HOME"] == "${{ steps." + java["id"] + ".outputs.path }}"
    uv = _step(job, "astral-sh/setup-uv")
    assert str(uv["with"]["python-version"]) == "3.12"
    assert "setup-go" in " ".join(step.get("uses", "") for step in job["steps"]), (
        "actionlint is built with go"
    )


def test_native_job_runs_the_readme_commands_and_nothing_else(workflow: dict[str, Any]) -> None:
    readme = (settings.REPO_ROOT / "README.md").read_text()
    commands = set(re.findall(r"^(make \w+)", readme.split("## The two commands", 1)[1], re.MULTILINE))
    job = workflow["jobs"]["native"]
    runs = [step["run"].strip() for step in job["steps"] if "run" in step and "if" not in step]
    tools = [run for run in runs if run.startswith("apt-get")]
    assert [run for run in runs if run not in tools] == ["make test"] and "make test" in commands
    # The machine prerequisites only: packages the README names, nothing the Makefile does itself.
    assert all("pip" not in run and "uv " not in run and "pytest" not in run for run in tools)


def test_compose_job_brings_the_stack_up_tests_it_and_always_tears_it_down(workflow: dict[str, Any]) -> None:
    job = workflow["jobs"]["compose"]
    runs = _runs(job)
    assert "testbed init" in runs and "testbed up --backend compose" in runs
    assert "-m compose" in runs, "the compose-backed suite"
    assert job["env"]["TESTBED_COMPOSE_ENDPOINTS"] == "1", "scenarios reach the services from the host"
    assert "--backend compose" in runs.split("testbed run", 1)[1], "a scenario on compose"
    down = [s for s in job["steps"] if "down --volumes" in s.get("run", "")]
    assert down and down[0]["if"] == "always()"
    uploads = [s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact")]
    assert uploads and all(s["if"] == "failure()" for s in uploads)


def test_nix_job_runs_flake_check(workflow: dict[str, Any]) -> None:
    assert "nix flake check" in _runs(workflow["jobs"]["nix"])


def test_actions_and_images_are_pinned(workflow: dict[str, Any]) -> None:
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            if "uses" in step:
                assert re.search(r"@(v\d+(\.\d+)*|[0-9a-f]{40})$", step["uses"]), step["uses"]
        if "container" in job:
            assert re.search(r":\d+(\.\d+)+$", job["container"]["image"]), job["container"]
    assert workflow["permissions"] == {"contents": "read"}


def _fake_jdk(root: Path, major: int) -> Path:
    home = root / f"jdk-{major}"
    (home / "bin").mkdir(parents=True)
    (home / "release").write_text(f'JAVA_VERSION="{major}.0.2"\n')
    return home


def test_setup_without_a_jdk_21_fails_with_one_line_naming_the_fix(tmp_path: Path) -> None:
    """What a user's CI without setup-java gets: one line, exit 1, no traceback."""
    old = _fake_jdk(tmp_path, 17)
    env = {**os.environ, "ES_JAVA_HOME": str(old), "TESTBED_STATE_DIR": str(tmp_path / "state")}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "testbed"), "setup"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1, result.stderr
    # Checked before anything is installed: the only line, on any machine (root or not).
    assert len(lines) == 1, result.stderr
    assert lines[-1].startswith("error: ") and "Traceback" not in result.stderr
    assert f"ES_JAVA_HOME={old} is not a JDK >= 21" in lines[-1]


def test_no_jdk_at_all_names_temurin_and_es_java_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from testbed.native import setup

    _fake_jdk(tmp_path, 17)
    monkeypatch.delenv("ES_JAVA_HOME", raising=False)
    monkeypatch.setattr(setup, "JVM_ROOT", tmp_path)
    with pytest.raises(setup.SetupError) as error:
        setup.java_home()
    assert "\n" not in str(error.value)
    assert (
        "JDK >= 21" in str(error.value)
        and "Temurin" in str(error.value)
        and "ES_JAVA_HOME" in str(error.value)
    )
