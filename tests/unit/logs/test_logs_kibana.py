"""Kibana's saved objects parse, reference each other consistently and only use mapped fields."""

from __future__ import annotations

import re

import yaml

from testbed.logs import kibana, layout
from testbed.settings import STACK_DIR

# field names a Lucene query string refers to: `name:` (not inside quotes)
_QUERY_FIELD = re.compile(r"([A-Za-z@_][A-Za-z0-9@_.]*):")


def test_ndjson_parses_into_the_expected_objects() -> None:
    objects = kibana.saved_objects()
    types = sorted(obj["type"] for obj in objects)
    assert types == ["dashboard", "index-pattern", "search", "search", "visualization"]
    for obj in objects:
        assert obj["id"] and obj["attributes"]["title"]


def test_references_resolve_within_the_file() -> None:
    objects = kibana.saved_objects()
    ids = {(obj["type"], obj["id"]) for obj in objects}
    for obj in objects:
        for reference in obj["references"]:
            assert (reference["type"], reference["id"]) in ids, (obj["id"], reference)


def test_data_view_targets_the_log_indices() -> None:
    (data_view,) = [obj for obj in kibana.saved_objects() if obj["type"] == "index-pattern"]
    assert data_view["attributes"]["title"] == layout.shipping().index_pattern
    assert data_view["attributes"]["timeFieldName"] == layout.shipping().timestamp_field


def test_every_referenced_field_exists_in_the_mapping() -> None:
    mapped = set(layout.mapped_fields())
    for saved in kibana.saved_queries():
        fields = set(saved.fields) | set(_QUERY_FIELD.findall(saved.query))
        assert fields - mapped == set(), f"{saved.title}: unmapped fields {fields - mapped}"


def test_kibana_yml_keeps_secrets_in_the_environment() -> None:
    text = (STACK_DIR / "kibana" / "kibana.yml").read_text()
    settings = yaml.safe_load(text)
    assert settings["elasticsearch.username"] == "kibana_system"
    for key in (
        "elasticsearch.password",
        "xpack.encryptedSavedObjects.encryptionKey",
        "xpack.security.encryptionKey",
    ):
        assert re.fullmatch(r"\$\{[A-Z_]+\}", settings[key]), key
