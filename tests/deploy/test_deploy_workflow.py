"""The CI workflow for users: valid for GitHub, and doing what the issue asks of each job."""

from __future__ import annotations

import re
from typing import Any

import pytest

from testbed.deploy import validate

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
