"""The two shippers (rsyslog natively, Logstash in compose) follow the same declared rules."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from testbed.context import RenderContext
from testbed.logs import layout, logstash, rsyslog
from testbed.secrets import Secrets
from testbed.settings import ports


@pytest.fixture
def ctx(tmp_path: Path) -> RenderContext:
    return RenderContext(mode="native", state_dir=tmp_path, ports=ports(), secrets=Secrets())


@pytest.fixture
def rsyslog_conf(ctx: RenderContext) -> str:
    ctx.pki_dir.mkdir(parents=True)
    ctx.ca_cert.write_text("")  # rsyslogd -N1 checks that the CA file exists
    rsyslog.render(ctx)
    return rsyslog.RsyslogPaths.of(ctx).config.read_text()


def test_rendered_rsyslog_config_is_valid_for_rsyslogd(ctx: RenderContext, rsyslog_conf: str) -> None:
    rsyslogd = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
    config = rsyslog.RsyslogPaths.of(ctx).config
    result = subprocess.run([rsyslogd, "-N1", "-f", str(config)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert config.stat().st_mode & 0o077 == 0  # it holds the writer's password


def test_committed_logstash_pipeline_is_rendered_from_the_declaration() -> None:
    assert logstash.PIPELINE_FILE.read_text() == logstash.pipeline_text(), (
        "stack/logstash/pipeline/logs.conf is stale: run `.venv/bin/python -m testbed.logs.logstash`"
    )


def _logstash_blocks(text: str, source: str) -> str:
    """The filter branch of one source in the Logstash pipeline."""
    start = text.index(f'if [@metadata][source] == "{source}" {{')
    depth, index = 0, text.index("{", start)
    for index in range(text.index("{", start), len(text)):
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        if depth == 0:
            break
    return text[start:index]


def _rsyslog_ruleset(text: str, name: str) -> str:
    start = text.index(f'ruleset(name="{name}")')
    return text[start : text.index("\n}\n", start)]


def _rsyslog_fields(block: str) -> set[str]:
    return {m.replace("!", ".") for m in re.findall(r"set \$!([A-Za-z@_!.]+) =", block)}


def _logstash_fields(block: str) -> set[str]:
    refs = re.findall(r"(?<![\w\]])((?:\[[A-Za-z@_]+\])+)", block)
    fields = {ref.strip("[]").replace("][", ".") for ref in refs}
    grok_targets = re.findall(r"%\{\w+:((?:\[[A-Za-z@_]+\])+)", block)
    fields |= {ref.strip("[]").replace("][", ".") for ref in grok_targets}
    return {field for field in fields if not field.startswith("@metadata")}


def test_both_shippers_write_the_same_index_id_and_operation(rsyslog_conf: str) -> None:
    rules = layout.shipping()
    pipeline = logstash.PIPELINE_FILE.read_text()
    # index: prefix + the UTC day of the event's @timestamp
    assert (
        f'string="{rules.index_prefix}%$!@timestamp:1:4%.%$!@timestamp:6:7%.%$!@timestamp:9:10%"'
        in rsyslog_conf
    )
    assert f'index => "{rules.index_prefix}%{{+YYYY.MM.dd}}"' in pipeline
    # _id = event.id, created (never overwritten)
    assert 'template(name="es_id" type="string" string="%$!event!id%")' in rsyslog_conf
    assert 'bulkid="es_id" dynbulkid="on"' in rsyslog_conf
    assert 'document_id => "%{[event][id]}"' in pipeline
    assert f'writeoperation="{rules.write_operation}"' in rsyslog_conf
    assert f'action => "{rules.write_operation}"' in pipeline
    # as the writer user, over TLS, verified against the stack CA
    assert f'uid="{rules.user}"' in rsyslog_conf and "tls.cacert=" in rsyslog_conf
    assert f'user => "{rules.user}"' in pipeline and "ssl_certificate_authorities" in pipeline
    # the same files
    for source in rules.sources:
        assert f"/{source.glob}" in rsyslog_conf
        assert f"/{source.glob}" in pipeline


@pytest.mark.parametrize("source", [s.name for s in layout.shipping().sources if s.format != "ecs-json"])
def test_both_shippers_parse_text_sources_into_the_same_ecs_fields(rsyslog_conf: str, source: str) -> None:
    # file_metadata: the rsyslog ruleset every source calls (log.file.path, log.offset, event.id, @timestamp)
    rsyslog_fields = _rsyslog_fields(_rsyslog_ruleset(rsyslog_conf, source))
    rsyslog_fields |= _rsyslog_fields(_rsyslog_ruleset(rsyslog_conf, "file_metadata")) - {"log.offset"}
    logstash_fields = _logstash_fields(_logstash_blocks(logstash.PIPELINE_FILE.read_text(), source))
    # rsyslog stamps @timestamp from the line; Logstash's date filter does it implicitly.
    assert rsyslog_fields - {"@timestamp", "tags"} <= logstash_fields | {"message"}, (
        rsyslog_fields - logstash_fields
    )
    assert logstash_fields - {"message", "tags"} <= rsyslog_fields, logstash_fields - rsyslog_fields


@pytest.mark.parametrize("source", [s.name for s in layout.shipping().sources if s.format != "ecs-json"])
def test_every_parsed_field_is_mapped(rsyslog_conf: str, source: str) -> None:
    fields = _rsyslog_fields(_rsyslog_ruleset(rsyslog_conf, source)) | {"log.file.path", "log.offset"}
    assert fields - set(layout.mapped_fields()) == set()
