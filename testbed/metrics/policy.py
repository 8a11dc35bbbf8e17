"""The metrics timing/retention policy and the SLO declarations, read once and validated.

``stack/prometheus/policy.yaml`` and ``stack/slo.yaml`` are the only places these numbers live; every
renderer in this package reads them from here.
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from testbed.settings import STACK_DIR

POLICY_FILE = STACK_DIR / "prometheus" / "policy.yaml"
SLO_FILE = STACK_DIR / "slo.yaml"

_DURATION = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str) -> int:
    """Seconds in a Prometheus-style duration (``1h30m``, ``5s``, ``1w``); whole seconds only."""
    match = _DURATION.match(text.strip())
    if not text.strip() or match is None:
        raise ValueError(f"{text!r} is not a duration like 30s, 5m, 1h30m or 7d")
    weeks, days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return (((weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60 + seconds


def format_duration(seconds: int) -> str:
    """The shortest Prometheus duration for ``seconds`` (``90`` -> ``1m30s``, ``0`` -> ``0s``)."""
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


_SIZE = re.compile(r"^(\d+)(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")
_SIZE_POWERS = {"B": 0, "K": 1, "M": 2, "G": 3, "T": 4}


def parse_size(text: str) -> int:
    """Bytes in a Prometheus size (``2GB``; like Prometheus, KB/MB/GB are powers of 1024, as KiB/MiB/GiB)."""
    match = _SIZE.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a size like 512MB or 2GB")
    return int(match.group(1)) * 1024 ** _SIZE_POWERS[match.group(2)[0]]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_duration(value: str) -> str:
    parse_duration(value)
    return value


class Retention(_Strict):
    time: str
    size: str

    @field_validator("time")
    @classmethod
    def _time(cls, value: str) -> str:
        return _check_duration(value)

    @field_validator("size")
    @classmethod
    def _size(cls, value: str) -> str:
        parse_size(value)
        return value


class AlertmanagerTimers(_Strict):
    group_wait: str
    group_interval: str
    repeat_interval: str
    resolve_timeout: str

    @field_validator("*")
    @classmethod
    def _durations(cls, value: str) -> str:
        return _check_duration(value)


class Thresholds(_Strict):
    min_request_rate: float
    error_ratio: float
    latency_p99_seconds: float
    queue_backlog_messages: int
    dead_letter_queue_regex: str
    disk_free_ratio: float
    disk_predict_window: str
    disk_predict_horizon: str
    log_pipeline_window: str
    anomaly_baseline_window: str
    anomaly_baseline_offset: str
    anomaly_stddevs: float
    anomaly_min_relative_change: float

    @field_validator(
        "disk_predict_window",
        "disk_predict_horizon",
        "log_pipeline_window",
        "anomaly_baseline_window",
        "anomaly_baseline_offset",
    )
    @classmethod
    def _durations(cls, value: str) -> str:
        return _check_duration(value)


class Policy(_Strict):
    scrape_interval: str
    scrape_timeout: str
    evaluation_interval: str
    retention: Retention
    burn_rate_window_scale: str
    symptom_rate_window: str
    for_: dict[str, str]
    thresholds: Thresholds
    alertmanager: AlertmanagerTimers

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _rename_for(cls, data: dict[str, object]) -> dict[str, object]:
        # `for` is the natural YAML key but a Python keyword.
        if isinstance(data, dict) and "for" in data:
            data = {**data, "for_": data["for"]}
            del data["for"]
        return data

    @field_validator("scrape_interval", "scrape_timeout", "evaluation_interval", "symptom_rate_window")
    @classmethod
    def _durations(cls, value: str) -> str:
        return _check_duration(value)

    @field_validator("for_")
    @classmethod
    def _for_durations(cls, value: dict[str, str]) -> dict[str, str]:
        for duration in value.values():
            _check_duration(duration)
        return value

    @field_validator("burn_rate_window_scale")
    @classmethod
    def _scale(cls, value: str) -> str:
        try:
            scale = Fraction(value)
        except (ValueError, ZeroDivisionError) as exc:
            raise ValueError(
                f"burn_rate_window_scale {value!r}: expected a number or a fraction such as 1/15"
            ) from exc
        if not 0 < scale <= 1:
            raise ValueError(f"burn_rate_window_scale {value!r}: must be in (0, 1]")
        return value

    @property
    def window_scale(self) -> Fraction:
        return Fraction(self.burn_rate_window_scale)

    def for_duration(self, alert_kind: str) -> str:
        try:
            return self.for_[alert_kind]
        except KeyError as exc:
            raise KeyError(f"stack/prometheus/policy.yaml: add `for.{alert_kind}`") from exc

    def scaled_window(self, production_window: str) -> str:
        """A burn-rate window scaled by the policy factor, never below 4 scrape intervals."""
        seconds = round(parse_duration(production_window) * self.window_scale)
        floor = 4 * parse_duration(self.scrape_interval)
        return format_duration(max(seconds, floor))


SliKind = Literal["availability", "latency"]


class Slo(_Strict):
    name: str
    service: str
    route: str
    method: str
    sli: SliKind
    objective: float
    threshold_seconds: float | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Slo:
        if not 0 < self.objective < 1:
            raise ValueError(f"SLO {self.name}: objective must be between 0 and 1 (e.g. 0.99)")
        if self.sli == "latency" and self.threshold_seconds is None:
            raise ValueError(f"SLO {self.name}: a latency SLO needs threshold_seconds")
        if self.sli == "availability" and self.threshold_seconds is not None:
            raise ValueError(f"SLO {self.name}: threshold_seconds only applies to latency SLOs")
        return self

    @property
    def error_budget(self) -> float:
        return round(1 - self.objective, 6)


class SloSpec(_Strict):
    period: str
    slos: list[Slo]

    @field_validator("slos")
    @classmethod
    def _unique(cls, value: list[Slo]) -> list[Slo]:
        names = [slo.name for slo in value]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"SLO names must be unique: {', '.join(duplicates)}")
        return value


def _read(path: Path) -> object:
    with path.open() as fh:
        return yaml.safe_load(fh)


@cache
def load_policy(path: Path = POLICY_FILE) -> Policy:
    return Policy.model_validate(_read(path))


@cache
def load_slos(path: Path = SLO_FILE) -> SloSpec:
    return SloSpec.model_validate(_read(path))
