"""Load: shapes follow the profile; the locustfile records one unique id per request and gates on SLOs.

The locustfile runs for real against a tiny stand-in shop on 127.0.0.1 (a few seconds, bounded);
the real gateway is exercised by the native scenario tests.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from testbed.scenario.record import RequestSample
from testbed.scenario.spec import LoadProfile
from testbed.settings import REPO_ROOT

LOCUSTFILE = REPO_ROOT / "load" / "locustfile.py"
LOCUST = Path(sys.executable).parent / "locust"


def test_shapes_follow_the_profile() -> None:
    assert LoadProfile(shape="steady", users=5, duration_s=60).users_at(30) == 5
    ramp = LoadProfile(shape="ramp", users=10, duration_s=100)
    assert [ramp.users_at(t) for t in (0, 50, 99)] == [1, 5, 10]
    spike = LoadProfile(
        shape="spike", users=2, duration_s=60, spike_users=20, spike_at_s=10, spike_duration_s=5
    )
    assert [spike.users_at(t) for t in (9, 10, 14, 15)] == [2, 20, 20, 2]


def test_locustfile_loads_with_a_profile(tmp_path: Path) -> None:
    # Locust monkey-patches on import: list the classes in a child process, never in the test process.
    env = {
        "PATH": "/usr/bin:/bin",
        "TESTBED_LOAD_PROFILE": json.dumps({"shape": "ramp", "users": 2, "duration_s": 5}),
    }
    done = subprocess.run(
        [str(LOCUST), "-f", str(LOCUSTFILE), "--list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Shopper" in done.stdout


class _StandInShop(BaseHTTPRequestHandler):
    order_ids = itertools.count(1)

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, code: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/catalog":
            self._send(200, {"products": [{"id": "p1"}, {"id": "p2"}]})
        elif self.path.startswith("/catalog/"):  # the locustfile's card-number lookup: no such product
            self._send(404, {"title": "Not Found"})
        else:
            self._send(200, {"order_id": self.path.rsplit("/", 1)[-1], "status": "paid"})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._send(202, {"order_id": str(next(self.order_ids)), "status": "pending"})


@pytest.fixture(scope="module")
def shop_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StandInShop)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _run_locust(tmp_path: Path, url: str, profile: dict, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "TESTBED_LOAD_PROFILE": json.dumps(profile),
        "TESTBED_RUN_ID": "unit",
        "TESTBED_REQUEST_LOG_DIR": str(tmp_path / "requests"),
    }
    command = [str(LOCUST), "-f", str(LOCUSTFILE), "--headless", "--host", url, "--only-summary", *extra]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def _recorded(tmp_path: Path) -> list[RequestSample]:
    lines = [line for f in (tmp_path / "requests").glob("*.jsonl") for line in f.read_text().splitlines()]
    return [RequestSample.model_validate_json(line) for line in lines]


def test_every_request_is_recorded_with_a_unique_id(tmp_path: Path, shop_url: str) -> None:
    profile = {"shape": "steady", "users": 3, "duration_s": 4, "rate": 30}
    done = _run_locust(tmp_path, shop_url, profile, "--slo-max-fail-ratio", "0")
    assert done.returncode == 0, done.stderr[-2000:]
    samples = _recorded(tmp_path)
    assert len(samples) > 50  # ~30 req/s for 4 s
    assert len({s.id for s in samples}) == len(samples)
    assert all(s.id.startswith("unit-") and s.ok for s in samples)
    personal = {(s.name, s.status) for s in samples if s.name.endswith("(personal data)")}
    assert personal == {("/catalog/{id} (personal data)", 404), ("/orders (personal data)", 202)}
    assert all(s.status in (200, 202) for s in samples if not s.name.endswith("(personal data)"))
    assert {s.flow for s in samples} == {"browse", "order", "status"}


def test_slo_gate_sets_the_exit_code(tmp_path: Path, shop_url: str) -> None:
    profile = {"shape": "steady", "users": 2, "duration_s": 3, "rate": 10}
    done = _run_locust(tmp_path, shop_url, profile, "--slo-p95-ms", "0.01")
    assert done.returncode == 1
    assert "SLO gate failed" in done.stderr


def test_processes_each_record_their_requests(tmp_path: Path, shop_url: str) -> None:
    profile = {"shape": "steady", "users": 4, "duration_s": 4, "rate": 20}
    done = _run_locust(tmp_path, shop_url, profile, "--processes", "2")
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(list((tmp_path / "requests").glob("*.jsonl"))) == 2
    samples = _recorded(tmp_path)
    assert len({s.id for s in samples}) == len(samples) > 20


def test_a_worker_without_environment_gets_profile_and_run_id_from_the_master(
    tmp_path: Path, shop_url: str
) -> None:
    # What a worker on another machine is: `locust --worker --master-host ...`, nothing else set.
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    worker = subprocess.Popen(
        [str(LOCUST), "-f", str(LOCUSTFILE), "--worker", "--master-host", "127.0.0.1", "--master-port", port],
        env={"PATH": "/usr/bin:/bin"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        profile = {"shape": "steady", "users": 3, "duration_s": 4, "rate": 15, "flows": {"browse": 1}}
        master_options = ["--master", "--expect-workers", "1", "--master-bind-host", "127.0.0.1"]
        master_options += ["--master-bind-port", port, "--json-file", str(tmp_path / "stats")]
        master_options += ["--testbed-run-id", "remote", "--testbed-profile", json.dumps(profile)]
        done = _run_locust(tmp_path, shop_url, profile, *master_options)
    finally:
        worker.terminate()
        worker.wait(timeout=20)
    assert done.returncode == 0, done.stderr[-2000:]
    samples = _recorded(tmp_path)
    assert [f.name.startswith("requests-") for f in (tmp_path / "requests").glob("*.jsonl")] == [True]
    assert len(samples) > 20 and all(s.id.startswith("remote-") for s in samples)
    # The master's flow weights, not the file's defaults (the personal-data requests are sent once anyway).
    assert {s.flow for s in samples if "personal data" not in s.name} == {"browse"}
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert sum(entry["num_requests"] for entry in stats) == len(samples)  # aggregated on the master
