"""The native shipper's configuration: stack/rsyslog/rsyslog.conf.j2 rendered for one stack.

``render(ctx)`` is the rsyslog component's ``render`` hook (testbed/native/stack.py).
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import jinja2

from testbed.context import RenderContext
from testbed.logs import layout
from testbed.native.configs import rsyslog_pidfile
from testbed.native.setup import chown_to_stack_user
from testbed.settings import STACK_DIR

TEMPLATE_DIR = STACK_DIR / "rsyslog"
STATS_INTERVAL_S = 10


@dataclass(frozen=True)
class RsyslogPaths:
    """Where one stack's rsyslog keeps its config, queue/offset state, rejected documents and stats."""

    config: Path
    work_dir: Path
    rejected_file: Path
    errorfile: Path

    @classmethod
    def of(cls, ctx: RenderContext) -> RsyslogPaths:
        logs = ctx.log_dir / "rsyslog"
        return cls(
            config=ctx.config_dir / "rsyslog" / "rsyslog.conf",
            work_dir=ctx.data_dir / "rsyslog",
            rejected_file=logs / "es-rejected.jsonl",
            errorfile=logs / "es-errors.jsonl",
        )


def exporter_command(ctx: RenderContext, paths: RsyslogPaths) -> str:
    """The stats exporter omprog runs: impstats on stdin, Prometheus metrics on ``rsyslog_stats``."""
    argv = [
        sys.executable,
        "-m",
        "testbed.logs.rsyslog_exporter",
        "--listen",
        ctx.address("rsyslog_stats"),
        "--rejected-file",
        str(paths.rejected_file),
        "--error-file",
        str(paths.errorfile),
    ]
    return shlex.join(argv)


def config_text(ctx: RenderContext) -> str:
    rules = layout.shipping()
    paths = RsyslogPaths.of(ctx)
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    text_sources = [
        source.__class__(**{**source.__dict__, "glob": str(ctx.log_dir / source.glob)})
        for source in rules.sources
        if source.format != "ecs-json"
    ]
    return environment.get_template("rsyslog.conf.j2").render(
        rules=rules,
        work_dir=paths.work_dir,
        ca_cert=ctx.ca_cert,
        es_url=f"https://{ctx.address('elasticsearch')}",
        es_password=ctx.secrets.model_dump()[rules.password_secret],
        services_glob=ctx.log_dir / rules.source("services").glob,
        text_sources=text_sources,
        errorfile=paths.errorfile,
        rejected_file=paths.rejected_file,
        stats_interval_s=STATS_INTERVAL_S,
        stats_address=ctx.address("rsyslog_stats"),
        exporter_command=exporter_command(ctx, paths),
    )


def render(ctx: RenderContext) -> None:
    """Write rsyslog.conf (0600: it holds the writer's password) and create its directories."""
    paths = RsyslogPaths.of(ctx)
    directories = (paths.config.parent, paths.work_dir, paths.rejected_file.parent, ctx.services_log_dir)
    for directory in (*directories, rsyslog_pidfile(ctx).parent):
        directory.mkdir(parents=True, exist_ok=True)
    for source in layout.shipping().sources:
        (ctx.log_dir / source.glob).parent.mkdir(parents=True, exist_ok=True)
    text = config_text(ctx)
    if not paths.config.exists() or paths.config.read_text() != text:
        tmp = paths.config.with_name(".rsyslog.conf.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        tmp.replace(paths.config)
    # rsyslogd runs as the stack user: a render as root must leave its files readable to it.
    chown_to_stack_user(paths.config, paths.work_dir, paths.rejected_file.parent)
