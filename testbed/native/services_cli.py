"""The services' command: ``testbed bench services`` (figures into bench/RESULTS-services.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from testbed.cli_helpers import bench_group


def bench_services_command(
    flame: Annotated[
        bool, typer.Option("--flame", help="Also record py-spy flame graphs into bench/flame-*.svg.")
    ] = False,
) -> None:
    """Gateway CPU per request and req/s at p99 < 100 ms, instrumented/bare side by side (stack up)."""
    from bench import services as bench

    raise typer.Exit(bench.main(["--flame"] if flame else []))


def register(app: typer.Typer) -> None:
    bench_group(app).command("services")(bench_services_command)
