"""stack/.env: every variable compose needs, 0600, secrets kept across runs, tags from versions.yaml."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from testbed import settings
from testbed.deploy.envfile import read_env, render_env, secrets_from_env, write_env
from testbed.secrets import Secrets


def test_written_file_is_private_and_holds_every_secret(tmp_path: Path) -> None:
    path = write_env(tmp_path / ".env")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    env = read_env(path)
    for field in Secrets.model_fields:
        assert len(env[field.upper()]) >= 20, field


def test_rerun_keeps_secrets_and_refreshes_declared_values(tmp_path: Path) -> None:
    path = write_env(tmp_path / ".env")
    first = read_env(path)
    path.write_text(path.read_text().replace(first["IMAGE_KIBANA"], "kibana:stale"))
    second = read_env(write_env(path))
    assert second["ELASTIC_PASSWORD"] == first["ELASTIC_PASSWORD"]
    assert second["IMAGE_KIBANA"] == settings.versions()["images"]["kibana"]


def test_fresh_renders_differ_in_secrets() -> None:
    assert render_env()["ELASTIC_PASSWORD"] != render_env()["ELASTIC_PASSWORD"]


def test_images_come_from_versions_yaml() -> None:
    env = render_env()
    for name, image in settings.versions()["images"].items():
        assert env[f"IMAGE_{name.upper()}"] == image


def test_published_ports_bind_loopback_by_default() -> None:
    assert render_env()["BIND_ADDRESS"] == "127.0.0.1"


def test_secrets_from_env_round_trip_and_missing_one_is_named() -> None:
    env = render_env()
    assert secrets_from_env(env).elastic_password == env["ELASTIC_PASSWORD"]
    del env["RABBITMQ_PASSWORD"]
    try:
        secrets_from_env(env)
    except ValueError as exc:
        assert "RABBITMQ_PASSWORD" in str(exc) and "testbed init" in str(exc)
    else:
        raise AssertionError("a missing secret must be refused")


def test_recorded_digests_are_used_only_for_their_own_tag(tmp_path: Path) -> None:
    images = settings.versions()["images"]
    digest = "sha256:" + "a" * 64
    record = tmp_path / "image-digests.json"
    record.write_text(
        json.dumps({"kibana": f"{images['kibana']}@{digest}", "grafana": f"grafana/grafana:0.0.1@{digest}"})
    )
    env = render_env(digests_file=record)
    assert env["IMAGE_KIBANA"] == f"{images['kibana']}@{digest}"
    assert env["IMAGE_GRAFANA"] == images["grafana"], "a digest of another tag must not be used"


def test_digest_pinned_images_still_pass_the_compose_invariants(tmp_path: Path) -> None:
    from testbed.deploy import validate

    record = tmp_path / "image-digests.json"
    record.write_text(json.dumps({"kibana": f"{settings.versions()['images']['kibana']}@sha256:{'b' * 64}"}))
    model = validate.load_compose(render_env(digests_file=record))
    assert validate.invariant_violations(model, settings.versions()["images"]) == []
