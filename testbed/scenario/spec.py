"""The scenario spec: one YAML file names a load profile, an optional chaos experiment, the promises.

``load_scenario(path)`` returns a validated ``Scenario`` or raises ``ScenarioInputError`` naming the file,
the line and field, and the fix. Durations are seconds (``*_s``), ratios are 0..1, latencies milliseconds.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from testbed.scenario.errors import ScenarioInputError
from testbed.settings import REPO_ROOT

FLOWS = ("browse", "order", "status")


Flow = Literal["browse", "order", "status"]


def _default_flows() -> dict[Flow, int]:
    return {"browse": 6, "order": 2, "status": 2}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LoadShape(StrEnum):
    STEADY = "steady"  # constant users for the whole run
    RAMP = "ramp"  # linear climb from 1 to ``users`` over the run
    SPIKE = "spike"  # ``users`` baseline, ``spike_users`` for ``spike_duration_s`` from ``spike_at_s``
    SOAK = "soak"  # steady, meant for long runs (never tagged ci)


class LoadProfile(_Strict):
    shape: LoadShape
    users: Annotated[int, Field(gt=0, le=500)]
    duration_s: Annotated[int, Field(gt=0, le=6 * 3600)]
    spawn_rate: Annotated[float, Field(gt=0)] = 10.0
    # Total target throughput (requests/s over all users); unset = think times of a human shopper.
    rate: Annotated[float, Field(gt=0, le=5000)] | None = None
    flows: dict[Flow, Annotated[int, Field(ge=0)]] = Field(default_factory=_default_flows)
    processes: Annotated[int, Field(ge=1, le=8)] = 1
    spike_users: Annotated[int, Field(gt=0, le=1000)] | None = None
    spike_at_s: Annotated[int, Field(ge=0)] | None = None
    spike_duration_s: Annotated[int, Field(gt=0)] | None = None

    def users_at(self, elapsed_s: float) -> int:
        """Users the shape wants ``elapsed_s`` seconds into the run (load/shapes.py drives Locust with it)."""
        if self.shape is LoadShape.RAMP:
            return max(1, min(self.users, round(self.users * elapsed_s / self.duration_s)))
        if self.shape is LoadShape.SPIKE and self.spike_users is not None:
            start = self.spike_at_s or 0
            if start <= elapsed_s < start + (self.spike_duration_s or 0):
                return self.spike_users
        return self.users

    @model_validator(mode="after")
    def _spike_is_complete(self) -> LoadProfile:
        spike_fields = (self.spike_users, self.spike_at_s, self.spike_duration_s)
        if self.shape is LoadShape.SPIKE:
            if None in spike_fields:
                raise ValueError("shape spike needs spike_users, spike_at_s and spike_duration_s")
            assert self.spike_at_s is not None and self.spike_duration_s is not None
            if self.spike_at_s + self.spike_duration_s > self.duration_s:
                raise ValueError("the spike must end before duration_s (spike_at_s + spike_duration_s)")
        elif any(value is not None for value in spike_fields):
            raise ValueError("spike_users/spike_at_s/spike_duration_s only apply to shape spike")
        if sum(self.flows.values()) == 0:
            raise ValueError("flows: at least one flow needs a weight above 0")
        return self


class ChaosSpec(_Strict):
    experiment: Path  # relative to the repository root
    start_at_s: Annotated[float, Field(ge=0)]  # seconds after load start
    # Expected length of the fault (method + rollbacks); the real window is read from the journal.
    fault_duration_s: Annotated[float, Field(gt=0)]
    # Passed to ``chaos run --var key=value`` (overrides the experiment's configuration).
    configuration: dict[str, str | int | float] = Field(default_factory=dict)

    def experiment_path(self) -> Path:
        return self.experiment if self.experiment.is_absolute() else REPO_ROOT / self.experiment


class Window(StrEnum):
    ALL = "all"
    OUTSIDE_FAULT = "outside_fault"  # the fault window plus its recovery grace is excluded
    DURING_FAULT = "during_fault"


class AvailabilitySLO(_Strict):
    min_success_ratio: Annotated[float, Field(gt=0, le=1)]
    window: Window = Window.ALL
    flow: Flow | None = None  # None: every request


class LatencySLO(_Strict):
    percentile: Annotated[float, Field(gt=0, le=100)]
    max_ms: Annotated[float, Field(gt=0)]
    window: Window = Window.ALL
    flow: Flow | None = None


class LogAssertion(_Strict):
    # Fraction of the request ids sent that must show up in Elasticsearch's access logs.
    min_completeness: Annotated[float, Field(gt=0, le=1)] = 1.0
    # Seconds from the request to its access log being searchable (the worst request counts).
    max_lag_s: Annotated[float, Field(gt=0)] = 60.0
    # p99 of the same lag (a heavy run's promise: the tail, not one straggler); unset = not asserted.
    max_lag_p99_s: Annotated[float, Field(gt=0)] | None = None


class ExpectedAlert(_Strict):
    name: Annotated[str, Field(min_length=1)]
    # Only notifications carrying these labels count (e.g. {job: inventory} for TargetDown).
    labels: dict[str, str] = Field(default_factory=dict)
    max_time_to_fire_s: Annotated[float, Field(gt=0)]  # from the fault's start
    max_time_to_resolve_s: Annotated[float, Field(gt=0)] | None = None  # from the fault's end


# Requests the gateway served on its public routes (probes, scrapes and fault admin excluded).
GATEWAY_REQUEST_COUNTER = (
    'http_requests_total{service="gateway",route!~"/healthz|/readyz|/metrics|/openapi.json|/admin/.*"}'
)


class CrossSignal(_Strict):
    # Locust's count vs Prometheus' counter vs Elasticsearch's access-log count, relative difference.
    tolerance: Annotated[float, Field(ge=0, lt=1)] = 0.02
    # A PromQL series selector (no sum(): a range is taken of it) of the gateway's request counters;
    # the runner adds up their increase over the run window, counter resets and new series included.
    prometheus_counter: str = GATEWAY_REQUEST_COUNTER


class Assertions(_Strict):
    availability: list[AvailabilitySLO] = Field(default_factory=list)
    latency: list[LatencySLO] = Field(default_factory=list)
    logs: LogAssertion | None = None
    alerts_expected: list[ExpectedAlert] = Field(default_factory=list)
    alerts_forbidden: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    cross_signal: CrossSignal | None = None
    # No e-mail address or card number in any of the run's log documents (testbed/scenario/privacy.py).
    no_personal_data: bool = False


class Scenario(_Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    load: LoadProfile
    chaos: ChaosSpec | None = None
    # Seconds after the fault ends that ``outside_fault`` also excludes (the system recovering).
    recovery_grace_s: Annotated[float, Field(ge=0)] = 15.0
    # Seconds after load ends to keep watching logs and alerts (shipping and resolve delays).
    settle_s: Annotated[float, Field(ge=0, le=900)] = 30.0
    assertions: Assertions

    @model_validator(mode="after")
    def _fault_fits_and_is_needed(self) -> Scenario:
        windows = [slo.window for slo in self.assertions.availability]
        windows += [slo.window for slo in self.assertions.latency]
        if self.load.rate is None:
            # The planned volume (rate × users over time) is an assertion: without a rate there is none.
            raise ValueError("load.rate is required: the achieved volume is checked against it")
        needs_fault = windows + ([Window.DURING_FAULT] if self.assertions.alerts_expected else [])
        if self.chaos is None:
            if Window.DURING_FAULT in needs_fault or Window.OUTSIDE_FAULT in needs_fault:
                raise ValueError(
                    "assertions use a fault window (during_fault/outside_fault or alerts_expected) "
                    "but the scenario has no chaos section"
                )
            return self
        if self.chaos.start_at_s + self.chaos.fault_duration_s > self.load.duration_s:
            raise ValueError("chaos.start_at_s + chaos.fault_duration_s must fit inside load.duration_s")
        return self


# --- loading with line numbers ---------------------------------------------------------------------


def _line_of(root: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the deepest YAML node along a pydantic error location."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == part), None)
            if match is None:
                break
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return line


_FIXES = {
    "missing": "add this field",
    "extra_forbidden": "remove it or check its spelling against testbed/scenario/spec.py",
    "enum": "use one of the listed values",
    "literal_error": "use one of the listed values",
}


def _fix_for(error_type: str) -> str:
    return _FIXES.get(error_type, "correct the value (see testbed/scenario/spec.py for the schema)")


def parse_scenario(text: str, source: Path | str) -> Scenario:
    """Validate scenario YAML text; ``source`` names it in errors."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioInputError(source, where, f"not valid YAML: {problem}", "fix the YAML syntax") from exc
    if not isinstance(data, dict):
        raise ScenarioInputError(source, "1", "expected a mapping at the top level", "start with `name:`")
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        # A misspelt field also makes its real name "missing": report the misspelling, the cause.
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        first = errors[0]
        loc = tuple(first["loc"])
        field = ".".join(str(p) for p in loc) or "(top level)"
        line = _line_of(root, loc)
        raise ScenarioInputError(
            source, f"{line}" if line else "", f"{field}: {first['msg']}", _fix_for(first["type"])
        ) from exc
    _check_experiment(scenario, root, source)
    return scenario


def _check_experiment(scenario: Scenario, root: yaml.Node | None, source: Path | str) -> None:
    if scenario.chaos is None:
        return
    path = scenario.chaos.experiment_path()
    if not path.is_file():
        line = _line_of(root, ("chaos", "experiment"))
        raise ScenarioInputError(
            source,
            f"{line}",
            f"chaos.experiment: {scenario.chaos.experiment} does not exist",
            "name a file under chaos/experiments/ (relative to the repository root)",
        )


def load_scenario(path: Path) -> Scenario:
    if not path.is_file():
        raise ScenarioInputError(path, "", "no such scenario file", "pass a path like scenarios/smoke.yaml")
    scenario = parse_scenario(path.read_text(), path)
    if scenario.name != path.stem:
        raise ScenarioInputError(
            path, "1", f"name {scenario.name!r} differs from the file name", f"set name: {path.stem}"
        )
    return scenario


def known_alert_names(rules_dir: Path = REPO_ROOT / "stack" / "prometheus") -> set[str]:
    """Alert names declared in the Prometheus rule files (empty when none exist yet)."""
    names: set[str] = set()
    for rules_file in sorted([*rules_dir.rglob("*.yml"), *rules_dir.rglob("*.yaml")]):
        try:
            document = yaml.safe_load(rules_file.read_text())
        except yaml.YAMLError:
            continue
        if not isinstance(document, dict):
            continue
        for group in document.get("groups") or []:
            for rule in group.get("rules") or []:
                if isinstance(rule, dict) and "alert" in rule:
                    names.add(str(rule["alert"]))
    return names


def check_alert_names(scenario: Scenario, source: Path, declared: set[str]) -> None:
    """An assertion on an alert nobody declared can never hold: reject it as bad input."""
    if not declared:
        return
    wanted = [a.name for a in scenario.assertions.alerts_expected] + scenario.assertions.alerts_forbidden
    for name in wanted:
        if name not in declared:
            raise ScenarioInputError(
                source,
                "assertions",
                f"alert {name!r} is not declared in stack/prometheus rules",
                f"use one of: {', '.join(sorted(declared))}",
            )
