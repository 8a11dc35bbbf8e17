"""``testbed service new <name>``."""

from __future__ import annotations

from typing import Annotated

import typer

from testbed.cli_helpers import fail

service_app = typer.Typer(no_args_is_help=True, help="The services under test (services/<name>/).")


@service_app.command("new")
def new_command(
    name: Annotated[str, typer.Argument(help="the service's name: lowercase letters, digits, _")],
    port: Annotated[int | None, typer.Option(help="its port (default: the next free one)")] = None,
) -> None:
    """Scaffold services/<name>/ (declaration, app with /healthz /readyz and one route, a unit test)."""
    from testbed import scaffold
    from testbed.settings import REPO_ROOT

    try:
        plan = scaffold.plan(REPO_ROOT, name, port)
        written = scaffold.create(plan)
        scaffold.render_committed(REPO_ROOT)
    except (scaffold.ScaffoldError, ValueError) as exc:
        raise fail(str(exc), code=2) from None
    for path in written:
        typer.echo(f"wrote {path.relative_to(REPO_ROOT)}")
    typer.echo(f"services/{name}/openapi.json and stack/prometheus/compose/prometheus.yml rendered")
    typer.echo("next: docs/adding-a-service.md (routes, declaration, a scenario, `make test`)")


def register(app: typer.Typer) -> None:
    app.add_typer(service_app, name="service")
