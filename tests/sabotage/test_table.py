"""The README's sabotage table is rendered from the recorded outcomes (no stack needed)."""

from __future__ import annotations

import json
from pathlib import Path

from bench.sabotage import END, START, main, render

CAUGHT = {
    "promise": "the alert reaches the sink",
    "sabotage": "route to a receiver that drops it",
    "caught_by": "alert TargetDown{job=node} fires within 30 s",
    "observed": "never fired (no firing notification reached the alert sink)",
    "verdict": "failed",
    "time_to_verdict_s": 61.2,
    "note": "",
    "order": 6,
}


def test_a_caught_sabotage_names_its_assertion_and_a_missed_one_says_so() -> None:
    missed = {**CAUGHT, "verdict": "passed", "caught_by": None, "note": "false green still open", "order": 1}
    baseline = {**CAUGHT, "verdict": "passed", "caught_by": None, "time_to_verdict_s": 40.0}
    table = render({"alert-route-drops": CAUGHT, "locust-crashes": missed, "baseline-alert": baseline})
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    unrecorded = [row for row in rows if "NOT recorded" in row]
    rows = [row for row in rows if row not in unrecorded]
    assert len(rows) == 2 and len(unrecorded) == 10  # every other case of the matrix is listed as missing
    assert "NOT caught (verdict passed): false green still open" in rows[0]
    assert "**alert TargetDown{job=node} fires within 30 s**" in rows[1] and rows[1].endswith("| 61 s |")
    assert "`alert` passed in 40 s" in table and "in all: 162 s" in table


def test_the_readme_section_is_replaced_between_its_markers(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{START}\nold table\n{END}\n\nafter\n")
    matrix = tmp_path / "matrix.json"
    matrix.write_text('{"alert-route-drops": ' + json.dumps(CAUGHT) + "}")
    assert main(["--matrix", str(matrix), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "old table" not in text and "alert TargetDown{job=node}" in text and text.endswith("after\n")
    readme.write_text("# no markers\n")
    assert main(["--matrix", str(matrix), "--readme", str(readme)]) == 2


def test_a_case_left_from_an_earlier_run_is_marked_stale() -> None:
    current = {**CAUGHT, "measured_at": "2026-12-02T10:00:00Z"}
    earlier = {**CAUGHT, "order": 1, "measured_at": "2026-11-30T10:00:00Z"}
    table = render({"alert-route-drops": current, "locust-crashes": earlier})
    (stale,) = [line for line in table.splitlines() if "STALE" in line]
    assert "recorded 2026-11-30T10:00:00Z, not by the last run" in stale
    assert "last measured 2026-12-02T10:00:00Z" in table
