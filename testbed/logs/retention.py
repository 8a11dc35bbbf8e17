"""Retention and archiving, declared once in stack/retention.yaml, rendered to two engines:

- native (no ILM on the bare node): Elastic's Curator, an action file + client config under
  ``<state>/config/curator/``, run every ``every_minutes`` by ``schedule`` (a supervised component);
- compose (default distribution): an ILM policy and an SLM policy, committed under
  stack/elasticsearch/ilm/ and stack/elasticsearch/slm/ (a unit test checks committed == rendered).

Order is the guarantee: Curator runs its actions in sequence and stops at the first failure, so the
delete action runs only after the snapshot of the same indices succeeded.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from elasticsearch9 import Elasticsearch

from testbed.context import RenderContext
from testbed.logs import layout
from testbed.native.component import Component, HealthCheck
from testbed.native.setup import chown_to_stack_user
from testbed.settings import STACK_DIR

ILM_FILE = STACK_DIR / "elasticsearch" / "ilm" / "logs-testbed.json"
SLM_FILE = STACK_DIR / "elasticsearch" / "slm" / "logs-archive.json"
CURATOR_USER = "logs_admin"


def _index_filters(policy: layout.RetentionPolicy, older_than_days: int) -> list[dict[str, Any]]:
    return [
        {"filtertype": "pattern", "kind": "prefix", "value": policy.index_prefix},
        {
            "filtertype": "age",
            "source": "name",
            "direction": "older",
            "timestring": "%Y.%m.%d",
            "unit": "days",
            "unit_count": older_than_days,
        },
    ]


def curator_actions(policy: layout.RetentionPolicy | None = None) -> dict[str, Any]:
    policy = policy or layout.retention()
    return {
        "actions": {
            1: {
                "action": "snapshot",
                "description": f"Archive every log index older than {policy.hot_days} days, before deletion.",
                "options": {
                    "repository": policy.repository,
                    "name": f"{policy.snapshot_prefix}%Y.%m.%d-%H%M%S",
                    "include_global_state": False,
                    "wait_for_completion": True,
                    "wait_interval": 1,
                    "ignore_empty_list": True,
                    "continue_if_exception": False,
                },
                "filters": _index_filters(policy, policy.hot_days),
            },
            2: {
                "action": "delete_indices",
                "description": f"Delete log indices older than {policy.hot_days} days (archived by 1).",
                "options": {"ignore_empty_list": True, "continue_if_exception": False},
                "filters": _index_filters(policy, policy.hot_days),
            },
            3: {
                "action": "delete_snapshots",
                "description": f"Drop archive snapshots older than {policy.snapshot_keep_days} days.",
                "options": {"repository": policy.repository, "ignore_empty_list": True, "retry_interval": 5},
                "filters": [
                    {"filtertype": "pattern", "kind": "prefix", "value": policy.snapshot_prefix},
                    {
                        "filtertype": "age",
                        "source": "creation_date",
                        "direction": "older",
                        "unit": "days",
                        "unit_count": policy.snapshot_keep_days,
                    },
                ],
            },
        }
    }


def curator_client_config(ctx: RenderContext) -> dict[str, Any]:
    return {
        "elasticsearch": {
            "client": {"hosts": [f"https://{ctx.address('elasticsearch')}"], "ca_certs": str(ctx.ca_cert)},
            "other_settings": {
                "username": CURATOR_USER,
                "password": ctx.secrets.logs_admin_password,
                # The bare native node does not answer GET / (the version probe).
                "skip_version_test": True,
            },
        },
        "logging": {"loglevel": "INFO", "logformat": "default"},
    }


def curator_dir(ctx: RenderContext) -> Path:
    return ctx.config_dir / "curator"


def render_curator(ctx: RenderContext) -> None:
    """Write the action file and the client config (0600: it holds the admin password)."""
    directory = curator_dir(ctx)
    directory.mkdir(parents=True, exist_ok=True)
    (ctx.log_dir / "curator").mkdir(parents=True, exist_ok=True)
    files = {
        "actions.yml": yaml.safe_dump(curator_actions(), sort_keys=False),
        "curator.yml": yaml.safe_dump(curator_client_config(ctx), sort_keys=False),
    }
    for name, text in files.items():
        path = directory / name
        tmp = path.with_name(f".{name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        chown_to_stack_user(tmp)  # the curator component runs as the stack user
        tmp.replace(path)


def last_run_file(log_dir: Path) -> Path:
    return log_dir / "last-run.json"


def scheduler_pid_file(log_dir: Path) -> Path:
    return log_dir / "scheduler.pid"


@dataclass
class CuratorPass:
    ok: bool
    log: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.log)


def _curator_client(config_dir: Path) -> Elasticsearch:
    """The client of the rendered curator.yml, built directly: Curator's own builder probes ``GET /``,
    which the bare native node does not serve (es_client calls it even with skip_version_test)."""
    config = yaml.safe_load((config_dir / "curator.yml").read_text())["elasticsearch"]
    other = config["other_settings"]
    return Elasticsearch(
        hosts=config["client"]["hosts"],
        ca_certs=config["client"]["ca_certs"],
        basic_auth=(other["username"], other["password"]),
        request_timeout=300,
    )


def run_curator(config_dir: Path, log_dir: Path, dry_run: bool = False) -> CuratorPass:
    """One pass over the rendered action file with Curator's own action classes, in order, stopping at the
    first failure (as the ``curator`` command does); the outcome is recorded in ``last-run.json``."""
    # Curator is imported here, not at module level: the stack definition imports this module, and
    # every `testbed` command would pay for Curator's import.
    from curator.classdef import ActionsFile
    from curator.cli import ilm_action_skip, process_action
    from curator.exceptions import NoIndices, NoSnapshots

    result = CuratorPass(ok=True)
    handler = _ListHandler(result.log)
    curator_logger = logging.getLogger("curator")
    curator_logger.addHandler(handler)
    curator_logger.setLevel(logging.INFO)
    started = datetime.now(UTC)
    try:
        client = _curator_client(config_dir)
        actions = ActionsFile(str(config_dir / "actions.yml")).actions
        for number in sorted(actions):
            action = actions[number]
            if ilm_action_skip(client, action):
                continue
            result.log.append(f"action {number} ({action.action}): {action.description}")
            try:
                process_action(client, action, dry_run=dry_run)
            except (NoIndices, NoSnapshots):
                if not action.iel:
                    raise
                result.log.append(f"action {number}: nothing to do")
    except Exception as exc:  # any failure stops the pass: later actions (the deletion) must not run
        result.ok = False
        result.log.append(f"FAILED: {type(exc).__name__}: {exc}")
    finally:
        curator_logger.removeHandler(handler)
    record = {
        "started": started.isoformat(),
        "finished": datetime.now(UTC).isoformat(),
        "ok": result.ok,
        "log": result.log[-200:],
    }
    log_dir.mkdir(parents=True, exist_ok=True)
    last_run_file(log_dir).write_text(json.dumps(record, indent=2))
    return result


class _ListHandler(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(logging.INFO)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(f"{record.levelname} {record.getMessage()}")


def _wait_for_repository(config_dir: Path, timeout_s: float = 600.0) -> None:
    """The scheduler starts beside Elasticsearch (its Python start-up is then off the stack's critical
    path): the first pass waits until the node answers and its archive repository is registered (by
    Elasticsearch's post-start hook). After ``timeout_s`` the pass runs anyway and records its failure."""
    repository = layout.retention().repository
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with _curator_client(config_dir) as client:
                client.snapshot.get_repository(name=repository)
            return
        except Exception:  # not up yet, not yet registered, credentials not yet loaded: all mean "wait"
            time.sleep(2.0)


def schedule(config_dir: Path, log_dir: Path, every_s: float) -> None:
    """Run Curator now and then every ``every_s`` seconds (the native component's process)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    scheduler_pid_file(log_dir).write_text(f"{os.getpid()}\n")
    _wait_for_repository(config_dir)
    while True:
        result = run_curator(config_dir, log_dir)
        outcome = "ok" if result.ok else "FAILED"
        print(f"curator pass: {outcome}\n{result.text[-2000:]}", flush=True)
        time.sleep(every_s)


def component(ctx: RenderContext) -> Component:
    """The native ``curator`` component: this module's scheduler over the rendered Curator files."""
    log_dir = ctx.log_dir / "curator"
    command = [sys.executable, "-m", "testbed.logs.retention", "schedule"]
    command += ["--config-dir", str(curator_dir(ctx)), "--log-dir", str(log_dir)]
    return Component(
        name="curator",
        command=command,
        # Healthy once the scheduler runs (a pid file a killed instance left must not pass for a live one).
        # Not "a pass is recorded": a first pass on a fresh cluster takes seconds (Curator's import, a
        # snapshot) that nothing else waits for, and last-run.json outlives the process anyway. Each pass's
        # outcome is in last-run.json and the output log.
        health=HealthCheck(
            "command",
            f'test -s {scheduler_pid_file(log_dir)} && kill -0 "$(cat {scheduler_pid_file(log_dir)})"',
            timeout_s=120,
        ),
        # No depends_on: it starts beside Elasticsearch and its first pass waits for the node.
        group="jobs",
        render=render_curator,
    )


# ---- compose: ILM + SLM ---------------------------------------------------------------------------


def ilm_policy(policy: layout.RetentionPolicy | None = None) -> dict[str, Any]:
    """Delete a daily index once it is ``hot_days`` old, waiting for the SLM snapshot that holds it."""
    policy = policy or layout.retention()
    return {
        "policy": {
            "_meta": {"description": "Rendered from stack/retention.yaml by testbed/logs/retention.py"},
            "phases": {
                "hot": {"min_age": "0ms", "actions": {}},
                "delete": {
                    "min_age": f"{policy.hot_days}d",
                    "actions": {
                        "wait_for_snapshot": {"policy": "logs-archive"},
                        "delete": {"delete_searchable_snapshot": True},
                    },
                },
            },
        }
    }


def slm_policy(policy: layout.RetentionPolicy | None = None) -> dict[str, Any]:
    policy = policy or layout.retention()
    return {
        "name": f"<{policy.snapshot_prefix}{{now/d}}>",
        "schedule": f"0 0/{policy.every_minutes} * * * ?" if policy.every_minutes < 60 else "0 0 * * * ?",
        "repository": policy.repository,
        "config": {"indices": [f"{policy.index_prefix}*"], "include_global_state": False},
        "retention": {"expire_after": f"{policy.snapshot_keep_days}d", "min_count": 1},
    }


def compose_files() -> dict[Path, str]:
    return {
        ILM_FILE: json.dumps(ilm_policy(), indent=2) + "\n",
        SLM_FILE: json.dumps(slm_policy(), indent=2) + "\n",
    }


def render_compose() -> None:
    for path, text in compose_files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Log retention: Curator natively, ILM + SLM in compose.")
    parser.add_argument("command", choices=["schedule", "run-once", "render-compose"])
    parser.add_argument("--config-dir", type=Path, help="rendered Curator files (default: this stack's)")
    parser.add_argument("--log-dir", type=Path, help="where last-run.json goes (default: this stack's)")
    args = parser.parse_args(argv)
    if args.command == "render-compose":
        render_compose()
        return
    if args.config_dir is None or args.log_dir is None:
        ctx = RenderContext.native()
        render_curator(ctx)
        args.config_dir = args.config_dir or curator_dir(ctx)
        args.log_dir = args.log_dir or ctx.log_dir / "curator"
    if args.command == "run-once":
        result = run_curator(args.config_dir, args.log_dir)
        print(result.text)
        sys.exit(0 if result.ok else 1)
    schedule(args.config_dir, args.log_dir, layout.retention().every_minutes * 60)


if __name__ == "__main__":
    main()
