"""The services' command: ``testbed bench services`` (figures into bench/RESULTS-services.md)."""

from __future__ import annotations

import typer


def bench_services_command() -> None:
    """Gateway req/s at p99 < 250 ms and instrumented/bare throughput side by side (stack up)."""
    from bench import services as bench

    raise typer.Exit(bench.main([]))


def register(app: typer.Typer) -> None:
    from testbed.native.cli import bench_group

    bench_group(app).command("services")(bench_services_command)
