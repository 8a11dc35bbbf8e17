"""Before/after, side by side: two gateway + inventory pairs, one on a baseline commit and one on the
working tree, served at once against the native stack's PostgreSQL and loaded in alternating rounds.

    .venv/bin/python -m bench.services_ab <baseline commit> [rounds] [other commit]

Both pairs run beside each other on the same cores at the same moment, so their ratio holds however
loaded the machine is (each figure is CPU of the pair's two processes per ``GET /catalog``). The
baseline's tree is exported with ``git archive`` into a temporary directory and run with this venv.
"""

from __future__ import annotations

import os
import re
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

import psutil

from bench.services import Run, free_port, load

REPO = Path(__file__).resolve().parent.parent
CONCURRENCY = 4
ROUND_S = 5.0


def _program_environment(conf: str, program: str) -> dict[str, str]:
    section = conf.split(f"[program:{program}]", 1)[1].split("\n[", 1)[0]
    line = next(row for row in section.splitlines() if row.startswith("environment="))
    return dict(re.findall(r'([A-Z_]+)="([^"]*)"', line))


def _wait_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"a benchmark service exited ({process.returncode})")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"nothing listens on {port}")


def _pair(tree: Path, conf: str, log_dir: Path) -> tuple[list[subprocess.Popen[bytes]], int]:
    """inventory + gateway from ``tree``; returns the processes and the gateway's port."""
    inventory_port, gateway_port = free_port(), free_port()
    base = {**os.environ, "PYTHONPATH": str(tree), "SHOP_LOG_DIR": str(log_dir)}
    inventory_env = {**base, **_program_environment(conf, "inventory")}
    inventory_env.update(SHOP_PORT=str(inventory_port), SHOP_LOG_DIR=str(log_dir))
    gateway_env = {**base, **_program_environment(conf, "gateway")}
    gateway_env.update(
        SHOP_PORT=str(gateway_port),
        SHOP_LOG_DIR=str(log_dir),
        SHOP_INVENTORY_URL=f"http://127.0.0.1:{inventory_port}",
    )
    processes = []
    for module, env, port in (
        ("services.inventory", inventory_env, inventory_port),
        ("services.gateway", gateway_env, gateway_port),
    ):
        process = subprocess.Popen(
            [sys.executable, "-m", module],
            env=env,
            cwd=tree,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        processes.append(process)
        _wait_port(port, process)
    return processes, gateway_port


def _export(commit: str, tree: Path) -> Path:
    archive = subprocess.run(["git", "archive", commit], cwd=REPO, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(tree, filter="data")
    return tree


def main(argv: list[str]) -> int:
    from testbed.context import RenderContext
    from testbed.native import supervisor as sv

    if not argv or (len(argv) > 1 and not argv[1].isdigit()):
        print("usage: python -m bench.services_ab <baseline commit> [rounds] [other commit]", file=sys.stderr)
        return 2
    baseline = argv[0]
    rounds = int(argv[1]) if len(argv) > 1 else 4
    other = argv[2] if len(argv) > 2 else None  # default: the working tree
    ctx = RenderContext.native()
    if not sv.conf_path(ctx).is_file():
        print(f"error: no native stack at {ctx.state_dir}: run `testbed up` first", file=sys.stderr)
        return 2
    conf = sv.conf_path(ctx).read_text()
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as scratch:
        before_tree = _export(baseline, Path(scratch) / "before")
        after_tree = _export(other, Path(scratch) / "after") if other else REPO
        pairs = {}
        try:
            for name, tree in (("before", before_tree), ("after", after_tree)):
                log_dir = Path(scratch) / f"logs-{name}"
                log_dir.mkdir()
                pairs[name] = _pair(tree, conf, log_dir)
            runs: dict[str, list[Run]] = {name: [] for name in pairs}
            load_avg = [os.getloadavg()[0]]
            for _processes, port in pairs.values():
                load([("127.0.0.1", port)], "/catalog", CONCURRENCY, 1.5)  # warm-up
            for round_index in range(rounds):
                order = list(pairs) if round_index % 2 == 0 else list(reversed(pairs))
                for name in order:
                    processes, port = pairs[name]
                    watched = [psutil.Process(p.pid) for p in processes]
                    before = sum(sum(p.cpu_times()[:2]) for p in watched)
                    run = load([("127.0.0.1", port)], "/catalog", CONCURRENCY, ROUND_S)
                    run.server_cpu_s = sum(sum(p.cpu_times()[:2]) for p in watched) - before
                    runs[name].append(run)
                load_avg.append(os.getloadavg()[0])
        finally:
            for processes, _ in pairs.values():
                for process in processes:
                    process.terminate()
                    process.wait(timeout=20)
    print(
        f"baseline {baseline} vs {other or 'working tree'}; {rounds} alternating rounds of {ROUND_S:.0f} s"
        f" at concurrency {CONCURRENCY}; load average (1 min) {min(load_avg):.1f}-{max(load_avg):.1f}"
    )
    print("| code | gateway + inventory CPU per GET /catalog | req/s per round | 5xx |")
    print("|---|---:|---|---:|")
    cpu = {}
    for name, rs in runs.items():
        cpu[name] = sum(r.server_cpu_s for r in rs) / sum(r.requests for r in rs) * 1e6
        per_round = ", ".join(f"{r.rps:.0f}" for r in rs)
        print(f"| {name} | {cpu[name]:.0f} µs | {per_round} | {sum(r.errors for r in rs)} |")
    rates = {name: statistics.median(r.rps for r in rs) for name, rs in runs.items()}
    print(
        f"after / before CPU per request: {cpu['after'] / cpu['before']:.2f};"
        f" median req/s after / before: {rates['after'] / rates['before']:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
