"""Metrics commands: ``testbed metrics render`` and ``testbed archive metrics``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from testbed.cli_helpers import archive_group, fail
from testbed.context import RenderContext

metrics_app = typer.Typer(no_args_is_help=True, help="Prometheus, rules, Alertmanager, dashboards.")


@metrics_app.callback()
def metrics_main() -> None:
    """Prometheus, rules, Alertmanager, dashboards."""


@metrics_app.command("render")
def render_command() -> None:
    """Regenerate the committed files: rules, compose configs and Grafana dashboards."""
    from testbed.metrics.render import render_compose

    for path in render_compose():
        typer.echo(f"wrote {path}")
    try:
        from testbed.metrics.dashboards import write_dashboards
    except ImportError:  # dashboards are optional until grafana-foundation-sdk is installed
        return
    for path in write_dashboards():
        typer.echo(f"wrote {path}")


@metrics_app.command("reload")
def reload_command() -> None:
    """Re-render the native Prometheus/Alertmanager/blackbox configs and reload the running ones."""
    import httpx

    from testbed.metrics.client import reload_running
    from testbed.metrics.render import render_native

    ctx = RenderContext.native()
    render_native(ctx)
    try:
        reload_running(ctx)
    except httpx.HTTPError as exc:
        raise fail(f"reload failed ({exc}): is the stack up (`testbed status`)?") from exc
    typer.echo("prometheus, alertmanager and blackbox_exporter reloaded")


@metrics_app.command("figures")
def figures_command() -> None:
    """Write bench/RESULTS-metrics.md: alert timings vs budget, rule evaluation time (live stack)."""
    from testbed.metrics.figures import write_results

    typer.echo(f"wrote {write_results(RenderContext.native())}")


def archive_metrics_command(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Also pack the snapshot into this .tar.gz")
    ] = None,
) -> None:
    """Snapshot Prometheus' TSDB through the admin API (TLS + basic auth)."""
    from testbed.metrics.archive import ArchiveError, archive

    try:
        produced = archive(RenderContext.native(), output)
    except ArchiveError as exc:
        raise fail(str(exc)) from exc
    typer.echo(str(produced))


dashboards_app = typer.Typer(no_args_is_help=True, help="The Grafana dashboards, without Grafana.")


@dashboards_app.callback()
def dashboards_callback() -> None:
    """The Grafana dashboards, without Grafana."""


@dashboards_app.command("render")
def dashboards_render_command(
    since: Annotated[str, typer.Option("--since", help="Time range ending now: 15m, 1h, 90s.")] = "15m",
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write.")] = Path(
        "results/dashboards.html"
    ),
) -> None:
    """Plot every committed dashboard's panels from the live Prometheus/Elasticsearch into one HTML page."""
    import httpx

    from testbed.metrics.dashboard_render import render
    from testbed.metrics.policy import parse_duration

    try:
        seconds = parse_duration(since)
    except ValueError:
        raise fail(f"--since {since!r} is not a duration: use e.g. 15m, 1h or 90s", code=2) from None
    try:
        rendered = render(RenderContext.native(), seconds, output)
    except httpx.HTTPError as exc:
        raise fail(f"Prometheus unreachable ({exc}): is the stack up? (`testbed up`)") from None
    typer.echo(f"wrote {rendered.path}: {len(rendered.panels)} panels, {len(rendered.flagged)} without data")
    for panel in rendered.flagged:
        typer.echo(f"  no data: {panel.dashboard} / {panel.title}")


def register(app: typer.Typer) -> None:
    app.add_typer(metrics_app, name="metrics")
    app.add_typer(dashboards_app, name="dashboards")
    archive_group(app).command("metrics")(archive_metrics_command)


if __name__ == "__main__":
    metrics_app()
