"""The ``testbed`` command line."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Observability testbed: native stack, load, chaos, scenarios.")


@app.callback()
def main() -> None:
    """Observability testbed: native stack, load, chaos, scenarios."""


@app.command()
def version() -> None:
    """Print the testbed version."""
    from testbed import __version__

    typer.echo(__version__)


# Each area registers its commands here (one line each).
from testbed.deploy.cli import register as _register_deploy  # noqa: E402
from testbed.logs.cli import register as _register_logs  # noqa: E402
from testbed.metrics.cli import register as _register_metrics  # noqa: E402
from testbed.native.cli import register as _register_native  # noqa: E402
from testbed.native.services_cli import register as _register_services  # noqa: E402
from testbed.scaffold.cli import register as _register_scaffold  # noqa: E402
from testbed.scenario.cli import register as _register_scenario  # noqa: E402

_register_deploy(app)
_register_logs(app)
_register_metrics(app)
_register_scenario(app)
_register_services(app)
_register_scaffold(app)
_register_native(app)  # last: it finds the shared `bench` group made by the logs area
