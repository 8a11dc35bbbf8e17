"""Elasticsearch clients of the logs area, one per user, over TLS against the stack CA."""

from __future__ import annotations

from elasticsearch import Elasticsearch

from testbed import access
from testbed.context import RenderContext

SUPERUSER = access.ELASTIC_SUPERUSER.user


def es_url(ctx: RenderContext) -> str:
    return access.ELASTICSEARCH.url(ctx)


def client(ctx: RenderContext, user: str, password: str, timeout_s: float = 30.0) -> Elasticsearch:
    return Elasticsearch(
        es_url(ctx), ca_certs=str(ctx.ca_cert), basic_auth=(user, password), request_timeout=timeout_s
    )


def logged_in(ctx: RenderContext, credential: access.Credential, timeout_s: float = 30.0) -> Elasticsearch:
    return client(ctx, *credential.pair(ctx), timeout_s=timeout_s)


def superuser(ctx: RenderContext) -> Elasticsearch:
    return logged_in(ctx, access.ELASTIC_SUPERUSER)


def admin(ctx: RenderContext) -> Elasticsearch:
    return logged_in(ctx, access.LOGS_ADMIN)


def reader(ctx: RenderContext) -> Elasticsearch:
    return logged_in(ctx, access.LOGS_READER)


def writer(ctx: RenderContext) -> Elasticsearch:
    return logged_in(ctx, access.LOGS_WRITER)
