"""Retention end to end on the native node: archive, then delete, then restore from the archive."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from elasticsearch import Elasticsearch, helpers

from testbed.context import RenderContext
from testbed.logs import bootstrap, layout, retention
from testbed.native.control import NativeStack

pytestmark = [pytest.mark.native, pytest.mark.slow]


def _index_for(days_ago: int) -> str:
    return layout.shipping().index_for(date.today() - timedelta(days=days_ago))


def _fill(es: Elasticsearch, index: str, n: int) -> None:
    day = datetime.strptime(index.removeprefix(layout.shipping().index_prefix), "%Y.%m.%d").replace(
        tzinfo=UTC
    )
    actions = (
        {
            "_op_type": "create",
            "_index": index,
            "_id": f"ret-{uuid.uuid4().hex}",
            "_source": {"@timestamp": (day + timedelta(minutes=i)).isoformat(), "message": f"old event {i}"},
        }
        for i in range(n)
    )
    helpers.bulk(es, actions, refresh="wait_for")


@pytest.fixture
def curator_paused(logs_ctx: RenderContext) -> Iterator[None]:
    """The scheduled Curator component must not run a pass of its own in the middle of the test."""
    stack = NativeStack(logs_ctx)
    stack.stop("curator")
    yield
    stack.start("curator")


@pytest.fixture
def backdated(
    logs_ctx: RenderContext, es_super: Elasticsearch, curator_paused: None
) -> Iterator[tuple[str, str]]:
    policy = layout.retention()
    old, young = _index_for(policy.hot_days + 3), _index_for(policy.hot_days - 1)
    created = [name for name in (old, young) if not es_super.indices.exists(index=name)]
    _fill(es_super, old, 25)
    _fill(es_super, young, 5)
    yield old, young
    for name in [*created, f"restored-{old}"]:
        es_super.options(ignore_status=404).indices.delete(index=name)


def _snapshots_holding(es: Elasticsearch, index: str) -> list[dict]:
    policy = layout.retention()
    snapshots = es.snapshot.get(repository=policy.repository, snapshot=f"{policy.snapshot_prefix}*")[
        "snapshots"
    ]
    return [s for s in snapshots if index in s["indices"]]


def test_old_index_is_archived_before_deletion_and_restores(
    logs_ctx: RenderContext, es_super: Elasticsearch, backdated: tuple[str, str]
) -> None:
    old, young = backdated
    policy = layout.retention()
    retention.render_curator(logs_ctx)
    config_dir, log_dir = retention.curator_dir(logs_ctx), logs_ctx.log_dir / "curator"

    # No archive, no deletion: with the repository gone the snapshot fails and Curator stops there.
    es_super.snapshot.delete_repository(name=policy.repository)
    try:
        failed = retention.run_curator(config_dir, log_dir)
    finally:
        assert bootstrap.apply_snapshot_repository(es_super, logs_ctx)
    assert not failed.ok
    assert es_super.indices.exists(index=old), "deleted although no snapshot holds it"

    done = retention.run_curator(config_dir, log_dir)
    assert done.ok, done.text
    assert not es_super.indices.exists(index=old), "past retention but still there"
    assert es_super.indices.exists(index=young), "inside retention but deleted"
    holding = _snapshots_holding(es_super, old)
    assert holding and holding[-1]["state"] == "SUCCESS"

    snapshot = holding[-1]["snapshot"]
    es_super.snapshot.restore(
        repository=policy.repository,
        snapshot=snapshot,
        indices=old,
        rename_pattern="(.+)",
        rename_replacement="restored-$1",
        include_global_state=False,
        wait_for_completion=True,
    )
    es_super.indices.refresh(index=f"restored-{old}")
    assert es_super.count(index=f"restored-{old}")["count"] == 25
    es_super.snapshot.delete(repository=policy.repository, snapshot=snapshot)
