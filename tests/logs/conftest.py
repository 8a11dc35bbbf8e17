"""Fixtures of the logs integration tests: the live native stack (tests/conftest.py's ``native_stack``;
``TESTBED_STATE_DIR``/``TESTBED_PORT_OFFSET`` pick which stack)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from elasticsearch import Elasticsearch

from testbed.context import RenderContext
from testbed.logs import clients


@pytest.fixture(scope="session")
def logs_ctx(native_stack: RenderContext) -> RenderContext:
    return native_stack


@pytest.fixture
def es_super(logs_ctx: RenderContext) -> Iterator[Elasticsearch]:
    with clients.superuser(logs_ctx) as es:
        yield es


@pytest.fixture
def scratch_index(es_super: Elasticsearch) -> Iterator[str]:
    """A logs-testbed-* index name of a far-future day nobody else writes to, deleted afterwards.

    Not a past day: the retention job (Curator) deletes indices older than ``hot_days`` by the day in
    their name, and runs a pass as soon as it starts: the retention test restarts it, and in CI that pass
    deleted the next test's 1999 index between its auto-create and its write (404)."""
    name = f"logs-testbed-2999.01.{uuid.uuid4().int % 28 + 1:02d}-{uuid.uuid4().hex[:8]}"
    yield name
    es_super.options(ignore_status=404).indices.delete(index=name)
