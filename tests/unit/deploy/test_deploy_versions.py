"""One version source: versions.yaml; versions.json (for Nix) is its committed render."""

from __future__ import annotations

import json

from testbed import settings
from testbed.deploy.versions import VERSIONS_JSON, render_versions_json


def test_committed_versions_json_is_the_render_of_versions_yaml() -> None:
    assert VERSIONS_JSON.read_text() == render_versions_json(), "run `testbed versions render` and commit"


def test_elastic_images_track_the_native_elasticsearch_version() -> None:
    version = settings.versions()["elasticsearch"]["version"]
    elastic = {k: v for k, v in settings.versions()["images"].items() if v.startswith("docker.elastic.co/")}
    assert set(elastic) == {"elasticsearch", "kibana", "logstash"}
    assert all(image.endswith(f":{version}") for image in elastic.values())


def test_json_has_what_flake_nix_reads() -> None:
    data = json.loads(VERSIONS_JSON.read_text())
    assert data["python"] == "3.12"
    assert int(data["elasticsearch"]["java_min"]) >= 21
    assert data["images"]["python"].startswith("python:3.12")
