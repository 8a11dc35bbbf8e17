"""Locust's own ceiling: one FastHttpUser task on the gateway's cheapest route (/healthz), no wait.

Used by ``python -m bench.scenarios --capacity``: when the Locust process nears 100 % of a core, the
requests/s it reaches is the load generator's capacity on this machine, not the shop's.
"""

from __future__ import annotations

from locust import FastHttpUser, constant, task


class HealthzHammer(FastHttpUser):
    wait_time = constant(0)

    @task
    def healthz(self) -> None:
        self.client.get("/healthz")
