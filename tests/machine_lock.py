"""Live tests share the machine with the other stack's tests under ``make test``, except those marked
``exclusive`` (latency or throughput limits calibrated on an idle machine): an exclusive test waits for
the other stack's current test to end, and the other stack waits for it.

A reader-writer lock across processes (flock). The turnstile makes a waiting exclusive test block new
shared ones, so a stream of short tests on the other stack cannot starve it.
"""

from __future__ import annotations

import fcntl
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MACHINE_LOCK = Path(tempfile.gettempdir()) / "testbed-tests-machine.lock"


@contextmanager
def machine_share(exclusive: bool, lock_path: Path = MACHINE_LOCK) -> Iterator[None]:
    with lock_path.open("a") as lock, lock_path.with_suffix(".turnstile").open("a") as turnstile:
        fcntl.flock(turnstile, fcntl.LOCK_EX)
        fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        fcntl.flock(turnstile, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
