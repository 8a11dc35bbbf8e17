"""``testbed run``: scenarios from the command line, with a summary table and CI-friendly exit codes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from testbed.backend import BACKENDS
from testbed.cli_helpers import fail
from testbed.scenario.errors import ExitCode, ScenarioInputError
from testbed.scenario.runner import RunOutcome, exit_code_for, reverify, run_scenario
from testbed.scenario.spec import load_scenario
from testbed.settings import REPO_ROOT

SCENARIO_DIR = REPO_ROOT / "scenarios"
console = Console()


def select_scenarios(paths: list[Path], run_all: bool, tag: str | None) -> list[Path]:
    if paths and run_all:
        raise ScenarioInputError(
            "testbed run", "", "both scenario files and --all given", "pass one or the other"
        )
    if not paths and not run_all:
        raise ScenarioInputError(
            "testbed run", "", "no scenario given", "pass scenarios/<name>.yaml or --all [--tag ci]"
        )
    if paths:
        return paths
    chosen = [p for p in sorted(SCENARIO_DIR.glob("*.yaml")) if tag is None or tag in load_scenario(p).tags]
    if not chosen:
        raise ScenarioInputError(
            SCENARIO_DIR, "", f"no scenario tagged {tag!r}", "use --tag ci or drop --tag"
        )
    return chosen


def print_summary(outcomes: list[RunOutcome]) -> None:
    table = Table(title="Scenario results")
    for column in ("scenario", "verdict", "assertions", "wall time", "report"):
        table.add_column(column)
    for outcome in outcomes:
        held = sum(r.passed for r in outcome.results)
        verdict = "[green]PASSED[/]" if outcome.passed else "[red]FAILED[/]"
        table.add_row(
            outcome.scenario.name,
            verdict,
            f"{held}/{len(outcome.results)}",
            f"{outcome.wall_s:.0f} s",
            str(
                outcome.report.relative_to(REPO_ROOT)
                if outcome.report.is_relative_to(REPO_ROOT)
                else outcome.report
            ),
        )
    console.print(table)
    for outcome in outcomes:
        for result in outcome.results:
            if not result.passed:
                console.print(
                    f"  [red]✘[/] {outcome.scenario.name}: {result.name}: expected {result.expected}, "
                    f"observed {result.observed} ({result.detail})"
                )


def run_command(
    scenarios: Annotated[list[Path] | None, typer.Argument(help="scenarios/<name>.yaml files")] = None,
    run_all: Annotated[bool, typer.Option("--all", help="Run every scenario in scenarios/")] = False,
    tag: Annotated[
        str | None, typer.Option(help="With --all: only scenarios with this tag (e.g. ci)")
    ] = None,
    backend: Annotated[str, typer.Option(help="native (default) or compose")] = "native",
    results_dir: Annotated[Path, typer.Option(help="Where results/<run-id>/ go")] = REPO_ROOT / "results",
    reverify_dir: Annotated[
        Path | None, typer.Option("--reverify", help="Re-check a recorded run directory")
    ] = None,
) -> None:
    """Run scenarios: load + chaos, verify every promise, write results/<run-id>/ (exit 0: all held)."""
    try:
        if backend not in BACKENDS:  # checked before anything runs, not at the first scenario
            raise ScenarioInputError("--backend", "", f"unknown backend {backend!r}", "use native or compose")
        if reverify_dir is not None:
            [scenario_path] = select_scenarios(scenarios or [], False, None)[:1]
            outcomes = [reverify(reverify_dir, scenario_path)]
        else:
            paths = select_scenarios(scenarios or [], run_all, tag)
            for path in paths:  # all bad input is reported before anything runs
                load_scenario(path)
            outcomes = []
            for path in paths:
                outcome = run_scenario(path, backend, results_dir, console)
                verdict = "[green]PASSED[/]" if outcome.passed else "[red]FAILED[/]"
                console.print(f"{outcome.scenario.name}: {verdict} — report {outcome.report}")
                outcomes.append(outcome)
    except ScenarioInputError as error:
        raise fail(error.one_line(), code=ExitCode.BAD_INPUT) from None
    print_summary(outcomes)
    raise typer.Exit(exit_code_for(outcomes))


DEMO_SCENARIOS = ("smoke", "service-killed")


def run_demo_scenarios() -> int:
    """`testbed demo`'s main job on a stack already up: smoke + one chaos scenario; the exit code to use."""
    outcomes = []
    try:
        for name in DEMO_SCENARIOS:
            outcome = run_scenario(SCENARIO_DIR / f"{name}.yaml", "native", REPO_ROOT / "results", console)
            console.print(f"{name}: report {outcome.report}")
            outcomes.append(outcome)
    except ScenarioInputError as error:
        fail(error.one_line())  # printed here; the caller exits with the code returned
        return ExitCode.BAD_INPUT
    print_summary(outcomes)
    return exit_code_for(outcomes)


def register(app: typer.Typer) -> None:
    app.command("run")(run_command)
