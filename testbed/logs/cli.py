"""Commands of the logs area: ``testbed logs-search`` and ``testbed bench logs``."""

from __future__ import annotations

from typing import Annotated

import typer
from elasticsearch import ApiError, AuthenticationException
from elasticsearch import ConnectionError as ESConnectionError
from rich.console import Console

from testbed.cli_helpers import bench_group, fail
from testbed.context import RenderContext
from testbed.logs import clients
from testbed.logs.search import LogQuery, parse_since, search, table

# Piped output (less, grep, a CI log) gets a wide table rather than an 80-column one.
out = Console(width=None if Console().is_terminal else 160)


def _fail(message: str, code: int = 2) -> typer.Exit:
    """Bad input (2) unless told otherwise."""
    return fail(message, code=code)


def logs_search_command(
    query: Annotated[str, typer.Argument(help="Lucene query, e.g. 'timeout' or 'log.level:error'.")] = "*",
    service: Annotated[str | None, typer.Option("--service", "-s", help="Only this service.name.")] = None,
    trace: Annotated[
        str | None, typer.Option("--trace", "-t", help="Only this trace.id (oldest first).")
    ] = None,
    since: Annotated[str, typer.Option("--since", help="How far back: 30s, 5m, 2h, 1d.")] = "15m",
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=10_000, help="At most this many lines.")
    ] = 50,
) -> None:
    """Search the logs in Elasticsearch (as the read-only user) and print them as a table."""
    try:
        parse_since(since)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    ctx = RenderContext.native()
    request = LogQuery(text=query, service=service, trace_id=trace, since=since, limit=limit)
    try:
        with clients.reader(ctx) as es:
            events = search(es, request)
    except ESConnectionError:
        raise _fail(
            f"Elasticsearch is unreachable at {clients.es_url(ctx)}: start the stack (testbed up)", 1
        ) from None
    except AuthenticationException:
        raise _fail("logs_reader was refused: re-run `testbed up` to re-apply the users", 1) from None
    except ApiError as exc:
        raise _fail(f"Elasticsearch refused the query ({exc.message}): check its syntax", 2) from None
    scope = " ".join(
        part
        for part in (query, service and f"service={service}", trace and f"trace={trace}", f"since {since}")
        if part
    )
    out.print(table(events, title=f"{len(events)} log lines · {scope}"))


def bench_logs_command(
    duration_s: Annotated[float, typer.Option("--duration", help="Seconds per rate step.")] = 20.0,
    events: Annotated[
        int, typer.Option("--events", min=1000, help="Events per throughput run (ceiling and pipeline).")
    ] = 200_000,
) -> None:
    """Measure the native log pipeline (latency at 500 and 2,000 events/s, throughput as a ratio of the
    node's own ceiling, backlog drain)."""
    from testbed.logs import bench

    ctx = RenderContext.native()
    try:
        report = bench.run(ctx, step_duration_s=duration_s, max_rate_events=events, progress=out.print)
    except bench.BenchError as exc:
        raise _fail(str(exc), 1) from None
    out.print(report.markdown())
    out.print(f"written to {bench.write_results(report)}")


def register(app: typer.Typer) -> None:
    app.command("logs-search")(logs_search_command)
    bench_group(app).command("logs")(bench_logs_command)
