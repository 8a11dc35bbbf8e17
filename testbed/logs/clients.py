"""Elasticsearch clients of the logs area, one per user, over TLS against the stack CA."""

from __future__ import annotations

from elasticsearch import Elasticsearch

from testbed.context import RenderContext

SUPERUSER = "elastic"


def es_url(ctx: RenderContext) -> str:
    return f"https://{ctx.address('elasticsearch')}"


def client(ctx: RenderContext, user: str, password: str, timeout_s: float = 30.0) -> Elasticsearch:
    return Elasticsearch(
        es_url(ctx), ca_certs=str(ctx.ca_cert), basic_auth=(user, password), request_timeout=timeout_s
    )


def superuser(ctx: RenderContext) -> Elasticsearch:
    return client(ctx, SUPERUSER, ctx.secrets.elastic_password)


def admin(ctx: RenderContext) -> Elasticsearch:
    return client(ctx, "logs_admin", ctx.secrets.logs_admin_password)


def reader(ctx: RenderContext) -> Elasticsearch:
    return client(ctx, "logs_reader", ctx.secrets.logs_reader_password)


def writer(ctx: RenderContext) -> Elasticsearch:
    return client(ctx, "logs_writer", ctx.secrets.logs_writer_password)
