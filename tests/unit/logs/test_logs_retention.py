"""One retention policy, two engines: Curator's actions and the committed ILM + SLM agree with it."""

from __future__ import annotations

import json

from testbed.logs import layout, retention


def test_committed_ilm_and_slm_are_rendered_from_the_policy() -> None:
    for path, text in retention.compose_files().items():
        assert path.read_text() == text, (
            f"{path} is stale: run `.venv/bin/python -m testbed.logs.retention render-compose`"
        )


def test_curator_snapshots_before_it_deletes_and_stops_on_failure() -> None:
    actions = retention.curator_actions()["actions"]
    assert [actions[n]["action"] for n in sorted(actions)] == [
        "snapshot",
        "delete_indices",
        "delete_snapshots",
    ]
    snapshot, delete = actions[1], actions[2]
    # the same indices: the ones a snapshot just archived
    assert snapshot["filters"] == delete["filters"]
    assert snapshot["options"]["wait_for_completion"] is True
    assert not snapshot["options"]["continue_if_exception"]
    assert not delete["options"]["continue_if_exception"]


def test_both_engines_keep_the_same_number_of_days() -> None:
    policy = layout.retention()
    age = next(f for f in retention.curator_actions()["actions"][2]["filters"] if f["filtertype"] == "age")
    assert (age["unit"], age["unit_count"]) == ("days", policy.hot_days)
    ilm = json.loads(retention.ILM_FILE.read_text())["policy"]["phases"]["delete"]
    assert ilm["min_age"] == f"{policy.hot_days}d"
    assert ilm["actions"]["wait_for_snapshot"]["policy"] == retention.SLM_FILE.stem
    slm = json.loads(retention.SLM_FILE.read_text())
    assert slm["repository"] == policy.repository
    assert slm["retention"]["expire_after"] == f"{policy.snapshot_keep_days}d"
    assert slm["config"]["indices"] == [f"{policy.index_prefix}*"]
