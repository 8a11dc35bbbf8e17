"""The machine lock of ``make test``'s two stacks: shared tests overlap, an exclusive one runs alone and
is not starved by shared ones arriving after it.

Holders are separate interpreters (``spawn``: forking the multi-threaded test process may deadlock the
child), started one after another with pauses long enough for each to be waiting on the lock.
"""

from __future__ import annotations

import multiprocessing
import time
from multiprocessing.process import BaseProcess
from pathlib import Path

from tests.machine_lock import machine_share

SETTLE_S = 1.5  # a spawned interpreter imports and reaches flock well within this


def _hold(lock: Path, exclusive: bool, hold_s: float, log: Path, name: str) -> None:
    with machine_share(exclusive, lock):
        with log.open("a") as fh:
            fh.write(f"{name} start {time.monotonic()}\n")
        time.sleep(hold_s)
        with log.open("a") as fh:
            fh.write(f"{name} end {time.monotonic()}\n")


def _run(tmp_path: Path, plan: list[tuple[str, bool, float]]) -> dict[str, tuple[float, float]]:
    lock, log = tmp_path / "machine.lock", tmp_path / "log"
    context = multiprocessing.get_context("spawn")
    processes: list[BaseProcess] = []
    for name, exclusive, hold in plan:
        process = context.Process(target=_hold, args=(lock, exclusive, hold, log, name))
        process.start()
        processes.append(process)
        time.sleep(SETTLE_S)
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    times: dict[str, dict[str, float]] = {}
    for line in log.read_text().splitlines():
        name, what, at = line.split()
        times.setdefault(name, {})[what] = float(at)
    return {name: (t["start"], t["end"]) for name, t in times.items()}


def test_shared_overlap_and_exclusive_waits_for_them(tmp_path: Path) -> None:
    spans = _run(tmp_path, [("a", False, 4.0), ("b", False, 4.0), ("x", True, 0.2)])
    assert spans["b"][0] < spans["a"][1]  # two shared holders at once
    assert spans["x"][0] >= max(spans["a"][1], spans["b"][1])  # exclusive after both


def test_a_waiting_exclusive_test_goes_before_later_shared_ones(tmp_path: Path) -> None:
    spans = _run(tmp_path, [("a", False, 4.0), ("x", True, 1.0), ("late", False, 0.2)])
    assert spans["x"][0] >= spans["a"][1]
    assert spans["late"][0] >= spans["x"][1]  # not let in while x waited
