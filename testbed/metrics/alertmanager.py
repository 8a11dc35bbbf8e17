"""alertmanager.yml: severity routing tree, grouping, inhibitions, webhook receivers (the alert sink).

Every receiver posts to the alert sink (``services/alert_sink``: ``POST /webhook``); the receiver name
in the payload tells which route the alert took. Timers come from stack/prometheus/policy.yaml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from testbed.context import RenderContext
from testbed.metrics.policy import Policy, load_policy
from testbed.metrics.scrape import GENERATED_HEADER

SINK_PATH = "/webhook"
GROUP_BY = ["alertname", "service", "slo"]

# Receiver per severity; `sink-default` catches anything without a known severity.
RECEIVER_BY_SEVERITY = {"critical": "sink-page", "warning": "sink-ticket", "info": "sink-info"}
DEFAULT_RECEIVER = "sink-default"

# While PostgreSQL is down, the services' errors and SLO burns are its consequence: notify the cause only.
DATABASE_DOWNSTREAM_ALERTS = (
    "ServiceHighErrorRate",
    "ServiceHighLatency",
    "ServiceRequestRateAnomaly",
    "SLOBurnRateFast",
    "SLOBurnRateSlow",
    "HealthProbeFailed",
)


SINK_USER = "alertmanager"  # services/alert_sink WEBHOOK_USER


def sink_password_file(ctx: RenderContext) -> Path:
    """The webhook password, 0600 (0640 in compose, for the pki group) beside alertmanager.yml."""
    return ctx.config_dir / "alertmanager" / "secrets" / "alert_sink_password"


def sink_url(ctx: RenderContext) -> str:
    return f"http://{ctx.address('alert_sink')}{SINK_PATH}"


def inhibit_rules() -> list[dict[str, Any]]:
    downstream = "|".join(DATABASE_DOWNSTREAM_ALERTS)
    return [
        {
            "source_matchers": ['alertname="PostgresDown"'],
            "target_matchers": [f'alertname=~"{downstream}"'],
        },
        {
            # A dead instance also fails its health probe: the scrape failure says it all.
            "source_matchers": ['alertname="TargetDown"'],
            "target_matchers": ['alertname="HealthProbeFailed"'],
            "equal": ["service"],
        },
        {
            # A fast burn already pages; the slow-burn ticket for the same SLO adds nothing.
            "source_matchers": ['alertname="SLOBurnRateFast"'],
            "target_matchers": ['alertname="SLOBurnRateSlow"'],
            "equal": ["slo"],
        },
        {
            # Elasticsearch down or red explains a stalled pipeline and shipper errors.
            "source_matchers": ['alertname=~"ElasticsearchUnreachable|ElasticsearchClusterRed"'],
            "target_matchers": [
                'alertname=~"LogPipelineStalled|LogShipperErrors|ElasticsearchClusterYellow"'
            ],
        },
    ]


def alertmanager_config(ctx: RenderContext, policy: Policy | None = None) -> dict[str, Any]:
    policy = policy or load_policy()
    timers = policy.alertmanager
    webhook = {
        "url": sink_url(ctx),
        "send_resolved": True,
        "max_alerts": 0,
        # The sink's webhook requires this credential; the password is a file, never inline.
        "http_config": {"basic_auth": {"username": SINK_USER, "password_file": str(sink_password_file(ctx))}},
    }
    receivers = [DEFAULT_RECEIVER, *RECEIVER_BY_SEVERITY.values()]
    return {
        "global": {"resolve_timeout": timers.resolve_timeout},
        "route": {
            "receiver": DEFAULT_RECEIVER,
            "group_by": GROUP_BY,
            "group_wait": timers.group_wait,
            "group_interval": timers.group_interval,
            "repeat_interval": timers.repeat_interval,
            "routes": [
                {"receiver": receiver, "matchers": [f'severity="{severity}"']}
                for severity, receiver in RECEIVER_BY_SEVERITY.items()
            ],
        },
        "inhibit_rules": inhibit_rules(),
        "receivers": [{"name": name, "webhook_configs": [webhook]} for name in receivers],
    }


def render_alertmanager_yml(ctx: RenderContext, policy: Policy | None = None) -> str:
    return GENERATED_HEADER + yaml.safe_dump(alertmanager_config(ctx, policy), sort_keys=False)


def alertmanager_flags(ctx: RenderContext) -> list[str]:
    config = ctx.config_dir / "alertmanager"
    bind = "127.0.0.1" if ctx.mode == "native" else "0.0.0.0"
    return [
        f"--config.file={config / 'alertmanager.yml'}",
        f"--web.config.file={config / 'web.yml'}",
        f"--web.listen-address={bind}:{ctx.port('alertmanager')}",
        f"--storage.path={ctx.data_dir / 'alertmanager'}",
        # One Alertmanager: no gossip port to open.
        "--cluster.listen-address=",
    ]
