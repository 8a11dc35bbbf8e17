"""Apply the logs layout to a running Elasticsearch: templates, roles, users, snapshot repository (and, in
compose, the ILM + SLM policies).

``apply(ctx)`` is the Elasticsearch component's ``post_start`` hook: idempotent (every call is a PUT of
the declared state), run as the ``elastic`` superuser.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from elasticsearch import ApiError, AuthenticationException, Elasticsearch

from testbed.context import RenderContext
from testbed.logs import clients, layout, retention, security
from testbed.native import configs

log = logging.getLogger(__name__)


LIFECYCLE_COMPONENT = "logs-testbed-lifecycle"


def apply_templates(es: Elasticsearch, extra_components: tuple[str, ...] = ()) -> None:
    # Component templates first: the index template refers to them by name.
    for name, body in layout.component_templates().items():
        es.cluster.put_component_template(name=name, template=body["template"], meta=body.get("_meta"))
    for name, body in layout.index_templates().items():
        es.indices.put_index_template(
            name=name,
            index_patterns=body["index_patterns"],
            composed_of=[*body["composed_of"], *extra_components],
            priority=body.get("priority"),
            meta=body.get("_meta"),
        )


def apply_snapshot_repository(es: Elasticsearch, ctx: RenderContext) -> bool:
    """Register the archive repository at ``ctx.snapshot_dir``; False (with a warning) if the node's
    ``path.repo`` does not allow it yet."""
    repository = layout.retention().repository
    try:
        es.snapshot.create_repository(
            name=repository,
            repository={"type": "fs", "settings": {"location": str(ctx.snapshot_dir), "compress": True}},
        )
    except ApiError as exc:
        log.warning(
            "snapshot repository %s not registered: set path.repo to %s in elasticsearch.yml (%s)",
            repository,
            ctx.snapshot_dir,
            exc.message,
        )
        return False
    return True


def wait_for_file_realm(ctx: RenderContext, timeout_s: float = 30.0) -> None:
    """The node reloads the file realm every ~5 s: wait until the writer can authenticate."""
    deadline = time.monotonic() + timeout_s
    while True:
        with clients.writer(ctx) as es:
            try:
                es.security.authenticate()
                return
            except AuthenticationException:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        "logs_writer cannot authenticate: is the file realm (users, users_roles, roles.yml) "
                        "written into the node's config directory? (testbed.logs.security.write_file_realm)"
                    ) from None
        time.sleep(0.5)


def apply_lifecycle(es: Elasticsearch) -> None:
    """Compose only (the native node has no ILM/SLM; Curator does it there): the committed ILM and SLM
    policies, and a component template attaching the ILM policy to new daily indices."""
    ilm = json.loads(retention.ILM_FILE.read_text())
    es.ilm.put_lifecycle(name=retention.ILM_FILE.stem, policy=ilm["policy"])
    slm = json.loads(retention.SLM_FILE.read_text())
    es.slm.put_lifecycle(policy_id=retention.SLM_FILE.stem, **slm)
    es.cluster.put_component_template(
        name=LIFECYCLE_COMPONENT,
        template={"settings": {"index.lifecycle.name": retention.ILM_FILE.stem}},
        meta={"description": "ILM policy of the log indices (compose only)", "managed_by": "testbed"},
    )


def apply(ctx: RenderContext) -> None:
    """Templates, roles, users and the archive repository, as declared under stack/.

    Natively the roles and users are the file realm written before the node starts
    (``security.write_file_realm``); in compose they go through the security API.
    """
    with clients.superuser(ctx) as es:
        if ctx.mode == "compose":
            apply_lifecycle(es)
            apply_templates(es, extra_components=(LIFECYCLE_COMPONENT,))
            security.apply_api(es, ctx)
        else:
            apply_templates(es)
        apply_snapshot_repository(es, ctx)
    if ctx.mode == "native":
        wait_for_file_realm(ctx)


def es_config_dir(ctx: RenderContext) -> Path:
    """Elasticsearch's config directory natively (``ES_PATH_CONF``)."""
    return ctx.config_dir / "elasticsearch"


def render_elasticsearch(ctx: RenderContext) -> None:
    """The native Elasticsearch component's ``render`` hook: the native area's config, then our file realm."""
    configs.render_elasticsearch(ctx)
    security.write_file_realm(ctx, es_config_dir(ctx))
