"""Locust load shapes: steady, ramp, spike, soak, parameterised by one scenario ``LoadProfile``.

The runner passes the profile as JSON in ``TESTBED_LOAD_PROFILE``; the locustfile exposes exactly one
of these classes (Locust would otherwise pick the first shape it finds). The users-over-time curve is
``LoadProfile.users_at`` (pure, unit-tested without importing Locust, which monkey-patches on import).
"""

from __future__ import annotations

import json
import os

from locust import LoadTestShape

from testbed.scenario.spec import LoadProfile, LoadShape

PROFILE_ENV = "TESTBED_LOAD_PROFILE"


def profile_from_env() -> LoadProfile | None:
    raw = os.environ.get(PROFILE_ENV)
    return LoadProfile.model_validate(json.loads(raw)) if raw else None


class _ProfileShape(LoadTestShape):
    """Stops at ``duration_s``: a run is bounded even if the caller forgets ``--run-time``."""

    profile: LoadProfile

    def __init__(self, profile: LoadProfile | None = None) -> None:
        super().__init__()
        chosen = profile or profile_from_env()
        if chosen is None:
            raise RuntimeError(f"{type(self).__name__}: set {PROFILE_ENV} to a scenario load profile (JSON)")
        self.profile = chosen

    def spawn_rate(self) -> float:
        return self.profile.spawn_rate

    def tick(self) -> tuple[int, float] | None:
        elapsed_s = self.get_run_time()
        if elapsed_s >= self.profile.duration_s:
            return None
        return self.profile.users_at(elapsed_s), self.spawn_rate()


class SteadyShape(_ProfileShape):
    """Constant users for the whole run."""


class RampShape(_ProfileShape):
    """Linear climb from 1 user to ``users`` over the run: where does latency bend?"""


class SpikeShape(_ProfileShape):
    """A baseline with a burst of ``spike_users``: the burst arrives at once."""

    def spawn_rate(self) -> float:
        return max(self.profile.spawn_rate, float(self.profile.spike_users or 0))


class SoakShape(_ProfileShape):
    """Steady load held for a long time (hours): memory, disk and retention show their trends."""


SHAPES: dict[LoadShape, type[_ProfileShape]] = {
    LoadShape.STEADY: SteadyShape,
    LoadShape.RAMP: RampShape,
    LoadShape.SPIKE: SpikeShape,
    LoadShape.SOAK: SoakShape,
}
