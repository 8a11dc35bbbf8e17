"""Shop traffic for the testbed: browse, order and order-status flows against the gateway.

Every request carries a unique ``X-Request-ID`` (``<run id>-<process token>-<n>``) and a W3C
``traceparent`` so the verifier can find its access log; each request sent is recorded as one JSON line
in ``$TESTBED_REQUEST_LOG_DIR/requests-<process>.jsonl``. Run it through ``testbed run`` or by hand, e.g.::

    TESTBED_LOAD_PROFILE='{"shape": "steady", "users": 5, "duration_s": 30}' \\
      locust -f load/locustfile.py --headless --host http://127.0.0.1:18080

Distributed mode (Locust's own: ``--processes N`` here, or ``--master`` + ``--worker --master-host``
across machines): the master sends the run id and the load profile to every worker with the spawn
message (``--testbed-run-id``, ``--testbed-profile``), so a worker needs no environment of its own; each
worker sends its request records back to the master (custom message ``testbed_requests``, batched, the
rest flushed when it stops, before it reports "stopped"), and the master writes them to its request
directory, one file per worker. Locust aggregates the workers' statistics on the master.

SLO gates (``--slo-max-fail-ratio``, ``--slo-p95-ms``) set Locust's exit code at the end of the run.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import secrets
import sys
import time
from pathlib import Path
from typing import IO, Any

import gevent
from locust import FastHttpUser, between, constant_throughput, events, tag, task
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))
import shapes

REQUEST_LOG_DIR_ENV = "TESTBED_REQUEST_LOG_DIR"
RUN_ID_ENV = "TESTBED_RUN_ID"

PROFILE = shapes.profile_from_env()
# Exactly one shape class in this module's namespace: Locust uses the first one it finds.
if PROFILE is not None:
    SelectedShape = shapes.SHAPES[PROFILE.shape]

RUN_ID = os.environ.get(RUN_ID_ENV) or f"adhoc{secrets.token_hex(3)}"
# Sent once per Locust process (see Shopper.send_personal_data): the services must redact them before
# logging; testbed/scenario/privacy.py looks for them (and any other) in Elasticsearch.
PERSONAL_EMAIL = "jane.doe@example.com"
PERSONAL_CARD = "4111111111111111"  # a Luhn-valid test card number
_personal_data_sent = False
FLOW_WEIGHTS = PROFILE.flows if PROFILE else {"browse": 6, "order": 2, "status": 2}
REQUESTS_MESSAGE = "testbed_requests"
FORWARD_BATCH = 500  # records per message from a worker to the master
FORWARD_EVERY_S = 1.0


class RequestRecorder:
    """One JSON line per request: written to this process's file, or (on a worker) sent to the master."""

    def __init__(self) -> None:
        self._file: IO[str] | None = None
        self._pid = 0
        self._token = ""
        self._sequence = itertools.count(1)
        self.run_id = RUN_ID
        self.forward_to: WorkerRunner | None = None
        self._pending: list[dict[str, Any]] = []

    def next_request_id(self) -> str:
        # A random token per process, not its pid: workers on several machines may share pids.
        if self._pid != os.getpid():
            self._pid, self._token = os.getpid(), secrets.token_hex(3)
        return f"{self.run_id}-{self._token}-{next(self._sequence)}"

    def write(self, sample: dict[str, Any]) -> None:
        if self.forward_to is not None:
            self._pending.append(sample)
            if len(self._pending) >= FORWARD_BATCH:
                self.flush()
            return
        directory = os.environ.get(REQUEST_LOG_DIR_ENV)
        if directory:
            self.append(Path(directory), f"requests-{os.getpid()}", [sample])

    def append(self, directory: Path, stem: str, samples: list[dict[str, Any]]) -> None:
        if self._file is None or self._pid != os.getpid() or Path(self._file.name).stem != stem:
            path = directory / f"{stem}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("a", buffering=1)
        self._file.write("".join(json.dumps(s, separators=(",", ":")) + "\n" for s in samples))

    def flush(self) -> None:
        """A worker's pending records to the master (ZeroMQ keeps them ahead of the worker's later
        "client_stopped", so the master has them all before it considers the worker stopped)."""
        if self.forward_to is not None and self._pending:
            batch, self._pending = self._pending, []
            self.forward_to.send_message(REQUESTS_MESSAGE, {"records": batch})


RECORDER = RequestRecorder()


class _MasterRequestLog:
    """On the master: each worker's records into ``requests-<worker>.jsonl`` of the request directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.files: dict[str, IO[str]] = {}

    def receive(self, environment: Environment, msg: Any, **_: Any) -> None:
        worker = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(msg.node_id))
        handle = self.files.get(worker)
        if handle is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            handle = self.files[worker] = (self.directory / f"requests-{worker}.jsonl").open("a", buffering=1)
        handle.write("".join(json.dumps(s, separators=(",", ":")) + "\n" for s in msg.data["records"]))


def _apply_profile(raw: str | None) -> None:
    """A worker started without the environment gets the profile from the master: rate and flow weights."""
    if not raw:
        return
    profile = shapes.LoadProfile.model_validate(json.loads(raw))
    Shopper.wait_time = (
        constant_throughput(profile.rate / profile.users) if profile.rate else between(0.5, 2.0)
    )
    flows = {"browse": Shopper.browse, "order": Shopper.order, "status": Shopper.status}
    Shopper.tasks = [flows[flow] for flow, weight in profile.flows.items() for _ in range(weight)]


@events.init.add_listener
def _distributed(environment: Environment, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        directory = os.environ.get(REQUEST_LOG_DIR_ENV)
        if directory:
            runner.register_message(REQUESTS_MESSAGE, _MasterRequestLog(Path(directory)).receive)
    elif isinstance(runner, WorkerRunner):
        RECORDER.forward_to = runner

        def forward_forever() -> None:
            while True:
                gevent.sleep(FORWARD_EVERY_S)
                RECORDER.flush()

        gevent.spawn(forward_forever)


@events.test_start.add_listener
def _from_master(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    if isinstance(environment.runner, WorkerRunner) and options is not None:
        if getattr(options, "testbed_run_id", None):
            RECORDER.run_id = options.testbed_run_id
        if PROFILE is None:
            _apply_profile(getattr(options, "testbed_profile", None))


@events.test_stop.add_listener
def _flush_on_stop(environment: Environment, **_: Any) -> None:
    RECORDER.flush()
    if isinstance(environment.runner, WorkerRunner):
        # The worker's last statistics, ahead of its "client_stopped": Locust itself sends them only on
        # "quit", after which the master waits a fixed 0.5 s (too short on a loaded machine: the tail of
        # the run was missing from the aggregated counts).
        environment.runner._send_stats()


def _traceparent() -> str:
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


@events.request.add_listener
def _record_request(
    name: str,
    response_time: float,
    response: Any,
    context: dict[str, Any],
    exception: BaseException | None,
    start_time: float,
    **_: Any,
) -> None:
    request_id = context.get("request_id")
    if request_id is None:  # a request this file did not make
        return
    status = getattr(response, "status_code", 0) or 0
    RECORDER.write(
        {
            "id": request_id,
            "flow": context.get("flow", ""),
            "name": name,
            "t": start_time,
            "latency_ms": round(response_time, 2),
            "ok": exception is None,
            "status": status,
        }
    )


class Shopper(FastHttpUser):
    """A shopper: mostly browses, sometimes orders, checks on orders placed."""

    wait_time = (
        constant_throughput(PROFILE.rate / PROFILE.users) if PROFILE and PROFILE.rate else between(0.5, 2.0)
    )

    def on_start(self) -> None:
        self.product_ids: list[str] = []
        self.order_ids: list[str] = []
        global _personal_data_sent
        if not _personal_data_sent:
            _personal_data_sent = True
            self.send_personal_data()

    def send_personal_data(self) -> None:
        """One product lookup whose path is a card number and one order carrying an e-mail address."""
        name = "/catalog/{id} (personal data)"
        with self._request("browse", "GET", f"/catalog/{PERSONAL_CARD}", name) as response:
            if response.status_code == 404:  # no such product: the right answer
                response.success()
            else:
                response.failure(f"HTTP {response.status_code}, expected 404")
        self.browse()
        if not self.product_ids:
            return
        body = {"product_id": self.product_ids[0], "quantity": 1, "customer_email": PERSONAL_EMAIL}
        with self._request("order", "POST", "/orders", "/orders (personal data)", json=body) as response:
            if response.status_code in (202, 409):
                response.success()
            else:
                response.failure(f"HTTP {response.status_code}")

    def _request(self, flow: str, method: str, path: str, name: str, **kwargs: Any) -> Any:
        request_id = RECORDER.next_request_id()
        headers = {"X-Request-ID": request_id, "traceparent": _traceparent(), "User-Agent": "testbed-locust"}
        return self.client.request(
            method,
            path,
            name=name,
            headers=headers,
            catch_response=True,
            context={"request_id": request_id, "flow": flow},
            **kwargs,
        )

    @tag("browse")
    @task(FLOW_WEIGHTS.get("browse", 0))
    def browse(self) -> None:
        with self._request("browse", "GET", "/catalog", "/catalog") as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
                return
            products = _items(response)
            if not products:
                response.failure("no products listed")
                return
            self.product_ids = [str(p["id"]) for p in products if p.get("id")]

    @tag("order")
    @task(FLOW_WEIGHTS.get("order", 0))
    def order(self) -> None:
        if not self.product_ids:
            self.browse()
            return
        body = {"product_id": random.choice(self.product_ids), "quantity": 1}
        with self._request("order", "POST", "/orders", "/orders", json=body) as response:
            if response.status_code == 409:  # out of stock: a correct answer, not an outage
                response.success()
                return
            if response.status_code not in (200, 201, 202):
                response.failure(f"HTTP {response.status_code}")
                return
            order_id = _field(response, "order_id")
            if not order_id:
                response.failure("order accepted without an id")
                return
            self.order_ids = [*self.order_ids[-19:], str(order_id)]

    @tag("status")
    @task(FLOW_WEIGHTS.get("status", 0))
    def status(self) -> None:
        if not self.order_ids:
            self.order()
            return
        order_id = random.choice(self.order_ids)
        with self._request("status", "GET", f"/orders/{order_id}", "/orders/{id}") as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
            elif not _field(response, "status"):
                response.failure("order without a status")


def _items(response: Any) -> list[dict[str, Any]]:
    try:
        payload = response.json()
    except ValueError:
        return []
    items = payload.get("items", payload.get("products", [])) if isinstance(payload, dict) else payload
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _field(response: Any, key: str) -> Any:
    try:
        payload = response.json()
    except ValueError:
        return None
    return payload.get(key) if isinstance(payload, dict) else None


# --- SLO gates: the exit code says whether the load itself met its promises -------------------------


@events.init_command_line_parser.add_listener
def _slo_arguments(parser: Any) -> None:
    parser.add_argument(
        "--slo-max-fail-ratio", type=float, default=None, help="Exit 1 above this failure ratio"
    )
    parser.add_argument("--slo-p95-ms", type=float, default=None, help="Exit 1 when p95 exceeds this (ms)")
    # Sent by the master to every worker with the spawn message (custom arguments are).
    parser.add_argument("--testbed-run-id", default=None, help="Request-id prefix (testbed run sets it)")
    parser.add_argument("--testbed-profile", default=None, help="Scenario load profile, JSON (testbed run)")


@events.quitting.add_listener
def _slo_gate(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    total = environment.stats.total
    breaches = []
    max_fail = getattr(options, "slo_max_fail_ratio", None)
    if max_fail is not None and total.fail_ratio > max_fail:
        breaches.append(f"failure ratio {total.fail_ratio:.4f} > {max_fail}")
    p95_limit = getattr(options, "slo_p95_ms", None)
    if p95_limit is not None and total.num_requests and total.get_response_time_percentile(0.95) > p95_limit:
        breaches.append(f"p95 {total.get_response_time_percentile(0.95):.0f} ms > {p95_limit} ms")
    if breaches:
        print(f"SLO gate failed at {time.strftime('%H:%M:%S')}: {'; '.join(breaches)}", file=sys.stderr)
        environment.process_exit_code = 1
