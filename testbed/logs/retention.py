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
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from testbed.context import RenderContext
from testbed.logs import layout
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
        tmp.replace(path)


def last_run_file(log_dir: Path) -> Path:
    return log_dir / "last-run.json"


def run_curator(config_dir: Path, log_dir: Path, dry_run: bool = False) -> subprocess.CompletedProcess[str]:
    """One Curator pass over the rendered action file; the outcome is recorded in ``last-run.json``."""
    curator = Path(sys.executable).with_name("curator")
    argv = [str(curator), "--config", str(config_dir / "curator.yml")]
    if dry_run:
        argv.append("--dry-run")
    argv.append(str(config_dir / "actions.yml"))
    started = datetime.now(UTC)
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=3600)
    record = {
        "started": started.isoformat(),
        "finished": datetime.now(UTC).isoformat(),
        "returncode": result.returncode,
        "output_tail": (result.stdout + result.stderr)[-4000:],
    }
    log_dir.mkdir(parents=True, exist_ok=True)
    last_run_file(log_dir).write_text(json.dumps(record, indent=2))
    return result


def schedule(config_dir: Path, log_dir: Path, every_s: float) -> None:
    """Run Curator now and then every ``every_s`` seconds (the native component's process)."""
    while True:
        result = run_curator(config_dir, log_dir)
        print(
            f"curator pass: exit {result.returncode}\n{(result.stdout + result.stderr)[-2000:]}", flush=True
        )
        time.sleep(every_s)


def component_command(ctx: RenderContext) -> list[str]:
    """The native ``curator`` component: this module's scheduler over the rendered files."""
    return [
        sys.executable,
        "-m",
        "testbed.logs.retention",
        "schedule",
        "--config-dir",
        str(curator_dir(ctx)),
        "--log-dir",
        str(ctx.log_dir / "curator"),
    ]


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
        print(result.stdout + result.stderr)
        sys.exit(result.returncode)
    schedule(args.config_dir, args.log_dir, layout.retention().every_minutes * 60)


if __name__ == "__main__":
    main()
