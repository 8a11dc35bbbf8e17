"""The compose shipper's pipeline: stack/logstash/logs.conf.j2 rendered from shipping.yaml into
stack/logstash/pipeline/logs.conf (committed; a unit test checks it is up to date).

Paths are the compose containers' mounts (``/testbed/...``, as stack/compose.yaml mounts them).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jinja2

from testbed import settings
from testbed.logs import layout
from testbed.settings import STACK_DIR

TEMPLATE_DIR = STACK_DIR / "logstash"
PIPELINE_FILE = TEMPLATE_DIR / "pipeline" / "logs.conf"
COMPOSE_ROOT = Path("/testbed")
LOGSTASH_DATA = Path("/usr/share/logstash/data")


def _compose_es_url() -> str:
    # The declared port, not the environment's: the committed pipeline must not depend on who renders it.
    return f"https://elasticsearch:{settings.declared_ports()['elasticsearch'][0]}"


def pipeline_text() -> str:
    rules = layout.shipping()
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    text_sources = [source for source in rules.sources if source.format != "ecs-json"]
    return environment.get_template("logs.conf.j2").render(
        rules=rules,
        sources={source.name: dataclasses.asdict(source) for source in rules.sources},
        text_sources=text_sources,
        log_root=COMPOSE_ROOT / "logs",
        data_dir=LOGSTASH_DATA,
        ca_cert=COMPOSE_ROOT / "pki" / "ca.crt",
        es_url=_compose_es_url(),
        id_field_ref="][".join(rules.id_field.split(".")),
    )


def render() -> Path:
    """Rewrite the committed pipeline from the declaration."""
    PIPELINE_FILE.parent.mkdir(parents=True, exist_ok=True)
    PIPELINE_FILE.write_text(pipeline_text())
    return PIPELINE_FILE


if __name__ == "__main__":
    print(render())
