"""Scenario suite figures: ``python -m bench.scenarios [RESULTS_DIR ...]`` → bench/RESULTS-scenarios.md.

1. Wall time of each scenario run (from each run's summary.json; the newest run of each scenario).
2. Time to detect per chaos scenario: fault start → first expected alert notification at the sink.
3. Locust capacity: one Locust process, 30 s, as many requests as it can send to the gateway
   (``--capacity``: needs the stack up; bounded, 127.0.0.1 only). Its CPU share tells whether the
   generator or the gateway was the limit.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from testbed.settings import REPO_ROOT, port

RESULTS_FILE = REPO_ROOT / "bench" / "RESULTS-scenarios.md"
CAPACITY_S = 30


def newest_summaries(result_dirs: list[Path]) -> dict[str, dict[str, Any]]:
    newest: dict[str, tuple[str, dict[str, Any]]] = {}
    for root in result_dirs:
        for path in root.rglob("summary.json"):
            summary = json.loads(path.read_text())
            run_id = summary["run_id"]
            if summary["scenario"] not in newest or run_id > newest[summary["scenario"]][0]:
                newest[summary["scenario"]] = (run_id, summary)
    return {name: summary for name, (_, summary) in sorted(newest.items())}


def time_to_detect(summary: dict[str, Any]) -> str:
    fired = [a for a in summary["assertions"] if a["kind"] == "alert" and " fires within " in a["name"]]
    if not fired:
        return "—"
    return "; ".join(f"{a['name'].split(' fires')[0].removeprefix('alert ')}: {a['observed']}" for a in fired)


def scenario_table(summaries: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "| scenario | verdict | wall time | requests | time to detect (fault start → notification) |",
        "|---|---|---|---|---|",
    ]
    for name, s in summaries.items():
        verdict = (
            "passed"
            if s["passed"]
            else "FAILED: " + ", ".join(a["name"] for a in s["assertions"] if not a["passed"])
        )
        if not (REPO_ROOT / "scenarios" / f"{name}.yaml").is_file():
            verdict += " (test fixture that must fail: tests/scenario/data/)"
        lines.append(
            f"| {name} | {verdict} | {s['wall_time_s']:.0f} s | {s['requests']} | {time_to_detect(s)} |"
        )
    return lines


def _run_one_locust(locustfile: Path, env: dict[str, str], extra: list[str]) -> tuple[int, int, float]:
    """(requests, failures, CPU share of one core) of one headless Locust process for CAPACITY_S."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            str(Path(sys.executable).parent / "locust"),
            "-f",
            str(locustfile),
            "--headless",
            "--host",
            f"http://127.0.0.1:{port('gateway')}",
            "--only-summary",
            "--json-file",
            f"{tmp}/stats",
            *extra,
        ]
        started = time.monotonic()
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        watched = psutil.Process(process.pid)
        cpu_start = cpu_end = watched.cpu_times()
        while process.poll() is None:
            try:
                cpu_end = watched.cpu_times()
            except psutil.NoSuchProcess:
                break
            time.sleep(1)
        elapsed = time.monotonic() - started
        stats = json.loads(Path(f"{tmp}/stats.json").read_text())
    cpu_s = (cpu_end.user + cpu_end.system) - (cpu_start.user + cpu_start.system)
    return sum(e["num_requests"] for e in stats), sum(e["num_failures"] for e in stats), cpu_s / elapsed


def _capacity_row(target: str, measured: tuple[int, int, float]) -> str:
    requests, failures, cpu_share = measured
    return f"| {target} | {requests / CAPACITY_S:.0f} | {failures} | {cpu_share:.0%} |"


def measure_capacity() -> list[str]:
    """Two figures: the shop flows as fast as they go, and Locust's own ceiling on /healthz."""
    profile = {"shape": "steady", "users": 50, "duration_s": CAPACITY_S, "rate": 5000, "spawn_rate": 50}
    shop_env = {**os.environ, "TESTBED_LOAD_PROFILE": json.dumps(profile), "TESTBED_RUN_ID": "bench"}
    shop = _run_one_locust(REPO_ROOT / "load" / "locustfile.py", shop_env, [])
    ceiling = _run_one_locust(
        REPO_ROOT / "bench" / "locust_ceiling.py",
        dict(os.environ),
        ["-u", "50", "-r", "50", "-t", f"{CAPACITY_S}s"],
    )
    load = os.getloadavg()[0]
    return [
        "| target | requests/s | failed | Locust CPU (one core) |",
        "|---|---|---|---|",
        _capacity_row("shop flows (load/locustfile.py, 50 users, no think time)", shop),
        _capacity_row("gateway /healthz (bench/locust_ceiling.py, 50 users)", ceiling),
        "",
        f"One process each, {CAPACITY_S} s, load average {load:.1f} at the end (2 cores shared by the team).",
        "A Locust CPU share well below 100 % means the target, not the generator, was the limit.",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results", nargs="*", type=Path, default=[REPO_ROOT / "results"])
    parser.add_argument("--capacity", action="store_true", help="also measure Locust capacity (stack up)")
    args = parser.parse_args()
    lines = [
        "# Scenario figures",
        "",
        f"Generated by `python -m bench.scenarios` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
    ]
    lines += [
        "Context: Debian 12, 2 CPU cores shared by the whole team while these ran (several stacks and",
        "test sessions at once; load average 10-26), one private native stack. Each figure is one run",
        "(no averaging); time to detect = fault start (first method action in the Chaos Toolkit journal)",
        "to the alert sink receiving the notification. Details per run: results/<run-id>/report.html.",
        "",
    ]
    summaries = newest_summaries(args.results)
    total_s = sum(summary["wall_time_s"] for summary in summaries.values())
    lines += [
        "## Scenario runs (newest run of each)",
        "",
        *scenario_table(summaries),
        "",
        f"Sum of wall times: {total_s / 60:.1f} min for {len(summaries)} scenarios.",
        "",
    ]
    if args.capacity:
        lines += [
            "## Load generator capacity (one Locust process, FastHttpUser)",
            "",
            *measure_capacity(),
            "",
        ]
    RESULTS_FILE.write_text("\n".join(lines))
    print(RESULTS_FILE.read_text())


if __name__ == "__main__":
    main()
