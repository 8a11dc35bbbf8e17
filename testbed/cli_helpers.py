"""What every `testbed` command module shares: how a command fails, and the shared sub-command groups.

A failure is one clear line on stderr (``error: <what and the fix>``), optional detail below it, and a
non-zero exit: ``raise fail("...")``.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape

err = Console(stderr=True)


def fail(message: str, detail: str = "", code: int = 1) -> typer.Exit:
    """Print one clear line (and optional detail) to stderr; the caller raises the returned Exit."""
    # Messages are text, not markup: a "[...]" in one (a list, a path) must print as it is.
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    if detail:
        err.print(detail, style="dim", highlight=False, markup=False, soft_wrap=True)
    return typer.Exit(code)


def shared_group(app: typer.Typer, name: str, help_text: str) -> typer.Typer:
    """The sub-command group ``name`` of ``app``, made on first use (several areas add to `bench`...)."""
    for group in app.registered_groups:
        if group.name == name and group.typer_instance is not None:
            return group.typer_instance
    created = typer.Typer(no_args_is_help=True, help=help_text)
    app.add_typer(created, name=name)
    return created


def bench_group(app: typer.Typer) -> typer.Typer:
    """``testbed bench``: each area adds its own `bench <what>`."""
    return shared_group(app, "bench", "Measure the native stack (figures for the README).")


def archive_group(app: typer.Typer) -> typer.Typer:
    """``testbed archive``: each area adds its own `archive <what>`."""
    return shared_group(app, "archive", "Archive the stack's data (snapshots).")
