"""Lifecycle and faults on a second, private stack (own state dir and port offset), so that the
session's stack is not touched: `down` leaves no process, recovery after kill -9 of supervisord,
Ctrl-C during `up`, a port already in use, a component crashing at start."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import yaml

from testbed import settings
from testbed.context import RenderContext
from testbed.native import control
from testbed.native import supervisor as sv
from testbed.native.control import NativeStack, StackError

pytestmark = pytest.mark.native

# Light components (no Elasticsearch) that still cover a JVM-less tree of processes: PostgreSQL
# forks workers, RabbitMQ runs a shell wrapper, beam, epmd and helpers.
SUBSET = ["postgres_exporter", "rabbitmq", "prometheus"]
TESTBED = str(Path(sys.executable).parent / "testbed")
# Candidate port offsets for the private stack, clear of the team's 1000-4000 (first free one wins).
CANDIDATE_OFFSETS = range(7000, 29001, 500)


def _free_offset() -> int:
    """The first candidate offset where no port of the stack is taken (other stacks run beside us)."""
    pinned = os.environ.get("TESTBED_NATIVE_TEST_OFFSET")
    if pinned:
        return int(pinned)
    base = yaml.safe_load((settings.STACK_DIR / "ports.yaml").read_text())
    declared = [p for value in base.values() for p in (value if isinstance(value, list) else [value])]
    connections = psutil.net_connections(kind="inet")
    bound = (psutil.CONN_LISTEN, psutil.CONN_NONE)  # NONE: UDP
    taken = {c.laddr.port for c in connections if c.laddr and c.status in bound}
    for offset in CANDIDATE_OFFSETS:
        if not any(port + offset in taken for port in declared):
            return offset
    raise RuntimeError("no free port offset for the private test stack")


@pytest.fixture
def private_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    offset = _free_offset()
    # Kept between runs (PKI, keystore and initdb are done once), one per offset.
    state = Path(f"/var/tmp/testbed-native-test-{offset}")
    monkeypatch.setenv("TESTBED_STATE_DIR", str(state))
    monkeypatch.setenv("TESTBED_PORT_OFFSET", str(offset))
    for name in list(os.environ):  # the caller's own per-port overrides would defeat the offset
        if name.startswith("TESTBED_PORT_") and name != "TESTBED_PORT_OFFSET":
            monkeypatch.delenv(name)
    yield dict(os.environ)
    stack = NativeStack()
    stack.down()
    assert control.stack_processes(stack.ctx) == []


def _listening_ports(pids: set[int]) -> set[int]:
    connections = psutil.net_connections(kind="inet")
    return {c.laddr.port for c in connections if c.status == psutil.CONN_LISTEN and c.pid in pids}


@pytest.mark.slow
def test_down_leaves_no_process_even_after_kill_9_of_supervisord(private_env: dict[str, str]) -> None:
    stack = NativeStack()
    stack.up(names=SUBSET)
    processes = control.stack_processes(stack.ctx)
    assert len(processes) >= 5
    ports = {stack.ctx.port(n) for n in ("postgresql", "rabbitmq", "prometheus", "rabbitmq_epmd")}
    assert ports <= _listening_ports({p.pid for p in processes})

    # kill -9 of supervisord: its children keep running, its socket file stays behind.
    os.kill(stack.client.pid(), signal.SIGKILL)
    time.sleep(1)
    assert control.stack_processes(stack.ctx), "the components should have outlived supervisord"
    assert sv.socket_path(stack.ctx).exists()
    assert {item.state for item in NativeStack().status().values()} == {"STALE"}

    # The next `up` recovers: no port conflict with the orphans, everything healthy again.
    recovered = NativeStack()
    recovered.up(names=SUBSET)
    statuses = recovered.status()
    assert all(statuses[name].health == "healthy" for name in recovered.closure(SUBSET))

    result = subprocess.run([TESTBED, "down"], env=private_env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert control.stack_processes(recovered.ctx) == []
    assert not (ports & _listening_ports({p.pid for p in psutil.process_iter()}))
    # Data kept: the PostgreSQL cluster is still there.
    assert (recovered.ctx.data_dir / "postgresql" / "pgdata" / "PG_VERSION").exists()


def test_port_in_use_names_the_port_and_its_holder(private_env: dict[str, str]) -> None:
    ctx = RenderContext.native()
    port = ctx.port("node_exporter")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        with pytest.raises(StackError) as caught:
            NativeStack().up(names=["node_exporter"])
        result = subprocess.run(
            [TESTBED, "up", "node_exporter"], env=private_env, capture_output=True, text=True, timeout=120
        )
    message = str(caught.value)
    assert f"port {port} (node_exporter" in message
    assert f"pid {os.getpid()}" in message
    assert "TESTBED_PORT_OFFSET" in message
    assert result.returncode != 0
    assert f"port {port}" in result.stderr
    assert "Traceback" not in result.stderr
    assert control.stack_processes(ctx) == []  # the failed up stopped what it had started


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: components run as the unprivileged testbed user")
def test_component_crashing_at_start_shows_its_log_and_stops_the_rest(
    private_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Port 1 is privileged: node_exporter, run as the testbed user, cannot bind it and exits.
    monkeypatch.setenv("TESTBED_PORT_NODE_EXPORTER", "1")
    env = {**private_env, "TESTBED_PORT_NODE_EXPORTER": "1"}
    result = subprocess.run([TESTBED, "up", "node_exporter", "epmd"], env=env, capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.returncode != 0
    assert "node_exporter exited at start" in result.stderr
    assert "permission denied" in result.stderr.lower()  # its last log lines
    assert control.stack_processes(RenderContext.native()) == []


def test_ctrl_c_during_up_stops_cleanly(private_env: dict[str, str]) -> None:
    ctx = RenderContext.native()
    process = subprocess.Popen([TESTBED, "up", *SUBSET], env=private_env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not sv.SupervisorClient(ctx).is_running():
        time.sleep(0.2)
    time.sleep(1)
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "interrupted" in err
    assert control.stack_processes(ctx) == []
