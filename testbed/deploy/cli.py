"""Deployment commands: ``init``, ``versions``, ``images``, ``compose`` and the compose containers' jobs."""

from __future__ import annotations

import json
import logging
from typing import Annotated

import typer
from rich.console import Console

from testbed.cli_helpers import fail

console = Console(stderr=True)

versions_app = typer.Typer(no_args_is_help=True, help="stack/versions.yaml and its JSON twin for Nix.")
images_app = typer.Typer(no_args_is_help=True, help="Container images of the compose stack.")
compose_app = typer.Typer(
    no_args_is_help=True, help="The compose stack (docker compose -f stack/compose.yaml)."
)
setup_app = typer.Typer(no_args_is_help=True, help="Jobs run inside the compose stack's containers.")

ServicesArg = Annotated[list[str] | None, typer.Argument(help="compose services (default: all)")]


def init() -> None:
    """Write stack/.env (0600): image tags, published ports and generated secrets for compose."""
    from testbed.deploy.envfile import write_env

    path = write_env()
    console.print(f"[green]wrote[/] {path} (0600; existing secrets kept)")


@versions_app.command("render")
def versions_render() -> None:
    """Write stack/versions.json (read by flake.nix) from stack/versions.yaml."""
    from testbed.deploy.versions import write_versions_json

    console.print(f"[green]wrote[/] {write_versions_json()}")


@versions_app.command("check")
def versions_check() -> None:
    """Exit 1 when stack/versions.json is not the render of stack/versions.yaml."""
    from testbed.deploy.versions import VERSIONS_JSON, render_versions_json

    if not VERSIONS_JSON.exists() or VERSIONS_JSON.read_text() != render_versions_json():
        raise fail(f"{VERSIONS_JSON} is stale: run `testbed versions render` and commit it")
    console.print("[green]stack/versions.json is up to date[/]")


@images_app.command("pin")
def images_pin() -> None:
    """Resolve every image tag to its digest and write stack/image-digests.json."""
    from testbed.deploy.images import DIGESTS_FILE, RegistryUnreachable, pin_images

    try:
        pinned = pin_images()
    except RegistryUnreachable as exc:
        raise fail(str(exc)) from None
    console.print(f"[green]pinned {len(pinned)} images[/] in {DIGESTS_FILE}")


def _compose_call(action: str, *args: object) -> None:
    from testbed.deploy import compose

    try:
        getattr(compose, action)(*args)
    except compose.ComposeUnavailable as exc:
        raise fail(str(exc)) from None
    except RuntimeError as exc:
        raise fail(str(exc)) from None


@compose_app.command("up")
def compose_up(services: ServicesArg = None) -> None:
    """Build, prepare, set up and start the stack; wait until every service is healthy."""
    _compose_call("up", services or [])


@compose_app.command("down")
def compose_down(
    volumes: Annotated[bool, typer.Option("--volumes", "-v", help="also delete the data volumes")] = False,
) -> None:
    """Stop and remove the containers (and with -v every volume: data, certificates, passwords)."""
    _compose_call("down", volumes)


@compose_app.command("stop")
def compose_stop(services: ServicesArg = None) -> None:
    _compose_call("stop", services or [])


@compose_app.command("start")
def compose_start(services: ServicesArg = None) -> None:
    _compose_call("start", services or [])


@compose_app.command("kill")
def compose_kill(services: ServicesArg = None) -> None:
    _compose_call("kill", services or [])


@compose_app.command("status")
def compose_status(
    as_json: Annotated[bool, typer.Option("--json", help="the stable status JSON")] = False,
) -> None:
    from testbed.deploy import compose

    try:
        status = compose.status()
    except (compose.ComposeUnavailable, RuntimeError) as exc:
        raise fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(status, indent=2))
        return
    for name, item in status["components"].items():
        typer.echo(f"{name:24} {item['state']:10} {item['health']:10} {item['url'] or ''}")


@setup_app.command("prepare")
def setup_prepare() -> None:
    """(in the prepare container) CA, certificates and the per-stack secret files."""
    from testbed.deploy import setup
    from testbed.deploy.runtime import compose_context

    setup.umask_for_group_sharing()
    try:
        ctx = compose_context()
    except ValueError as exc:
        raise fail(str(exc)) from None
    setup.prepare(ctx)
    console.print(f"[green]prepared[/] {ctx.pki_dir} and {ctx.config_dir}")


def _run_setup_steps(*steps: str) -> None:
    from testbed.deploy import setup
    from testbed.deploy.runtime import compose_context

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    actions = {"apply": setup.apply, "kibana": setup.import_kibana_objects}
    try:
        ctx = compose_context()
        for step in steps:
            actions[step](ctx)
    except (ValueError, RuntimeError) as exc:
        raise fail(str(exc)) from None
    console.print(f"[green]done:[/] {', '.join(steps)}")


@setup_app.command("apply")
def setup_apply() -> None:
    """(setup container) Elasticsearch: passwords, roles, users, templates, ILM/SLM. Idempotent."""
    _run_setup_steps("apply")


@setup_app.command("kibana")
def setup_kibana() -> None:
    """(setup container) Wait for Kibana, import the saved objects. Idempotent."""
    _run_setup_steps("kibana")


@setup_app.command("all")
def setup_all() -> None:
    """(setup container, the default) apply, then kibana: for a plain `docker compose up`."""
    _run_setup_steps("apply", "kibana")


@setup_app.command("databases")
def setup_databases() -> None:
    """(databases container) Each service's PostgreSQL role and the database it owns. Idempotent."""
    from testbed.deploy.runtime import compose_context
    from testbed.native.services import provision_stores

    try:
        provision_stores(compose_context())
    except (ValueError, OSError) as exc:
        raise fail(f"could not provision the services' databases: {exc}") from None
    console.print("[green]done:[/] databases")


def compose_service(
    name: Annotated[str, typer.Argument(help="port name of the service (stack/ports.yaml)")],
    instance: Annotated[int, typer.Argument(help="instance number")] = 0,
) -> None:
    """(in a service container) Run one service instance as the services area declares it."""
    from testbed.deploy.runtime import exec_service

    try:
        exec_service(name, instance)
    except (LookupError, ValueError) as exc:
        raise fail(str(exc)) from None


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.add_typer(versions_app, name="versions")
    app.add_typer(images_app, name="images")
    app.add_typer(compose_app, name="compose")
    app.add_typer(setup_app, name="compose-setup", hidden=True)
    app.command("compose-service", hidden=True)(compose_service)
