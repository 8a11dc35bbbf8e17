"""Image references split into registry/repository/tag the way the registries' v2 API wants them."""

from __future__ import annotations

import pytest

from testbed import settings
from testbed.deploy.images import DOCKER_HUB, ImageRef


@pytest.mark.parametrize(
    ("reference", "registry", "repository", "tag"),
    [
        ("postgres:15.14-bookworm", DOCKER_HUB, "library/postgres", "15.14-bookworm"),
        ("prom/prometheus:v3.5.0", DOCKER_HUB, "prom/prometheus", "v3.5.0"),
        ("docker.elastic.co/kibana/kibana:9.2.8", "docker.elastic.co", "kibana/kibana", "9.2.8"),
        ("ghcr.io/astral-sh/uv:0.13.9", "ghcr.io", "astral-sh/uv", "0.13.9"),
    ],
)
def test_parse(reference: str, registry: str, repository: str, tag: str) -> None:
    assert ImageRef.parse(reference) == ImageRef(registry, repository, tag)


def test_every_declared_image_parses() -> None:
    for reference in settings.versions()["images"].values():
        ImageRef.parse(reference)


def test_untagged_reference_is_refused() -> None:
    with pytest.raises(ValueError, match="registry/repository:tag"):
        ImageRef.parse("localhost:5000/thing")
