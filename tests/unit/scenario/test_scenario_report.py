"""Report, JUnit and journal reading on a recorded run; the CLI's bad-input exit code."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from testbed.scenario.collect import probe_requests_sent, read_journal, read_requests
from testbed.scenario.report import write_artifacts
from testbed.scenario.spec import parse_scenario
from testbed.scenario.verify import verify
from testbed.settings import REPO_ROOT
from tests.unit.scenario.test_scenario_verify import SPEC, _healthy_run

TESTBED = Path(sys.executable).parent / "testbed"


def test_artifacts_of_a_failed_run(tmp_path: Path) -> None:
    scenario = parse_scenario(SPEC, "recorded.yaml")
    record = _healthy_run()
    del record.log_sightings["run-42"]
    results = verify(scenario, record)
    report = write_artifacts(tmp_path, scenario, record, results, wall_s=123.0)

    page = report.read_text()
    assert "FAILED" in page
    assert page.count("data:image/png;base64,") == 3  # self-contained: every plot embedded
    assert "src='http" not in page and 'src="http' not in page

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["passed"] is False
    assert summary["wall_time_s"] == 123.0
    assert summary["fault_window_s"] == [20.0, 50.0]

    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    assert suite.get("tests") == str(len(results))
    assert suite.get("failures") == "1"


def test_journal_gives_status_and_fault_window(tmp_path: Path) -> None:
    journal = {
        "status": "completed",
        "deviated": False,
        "run": [
            {
                "activity": {"name": "kill"},
                "start": "2026-11-30T07:00:00+00:00",
                "end": "2026-11-30T07:00:01+00:00",
            },
            {
                "activity": {"name": "start"},
                "start": "2026-11-30T07:00:31+00:00",
                "end": "2026-11-30T07:00:40+00:00",
            },
        ],
    }
    path = tmp_path / "journal.json"
    path.write_text(json.dumps(journal))
    status, deviated, window = read_journal(path)
    assert (status, deviated) == ("completed", False)
    assert window is not None and window[1] - window[0] == 40.0
    assert read_journal(tmp_path / "missing.json") == (None, False, None)


def test_requests_from_several_processes_are_merged_in_time_order(tmp_path: Path) -> None:
    (tmp_path / "requests-1.jsonl").write_text(
        '{"id":"a","flow":"browse","name":"/catalog","t":2.0,"latency_ms":1,"ok":true,"status":200}\n'
    )
    (tmp_path / "requests-2.jsonl").write_text(
        '{"id":"b","flow":"browse","name":"/catalog","t":1.0,"latency_ms":1,"ok":true,"status":200}\n'
    )
    assert [r.id for r in read_requests(tmp_path)] == ["b", "a"]


def test_bad_scenario_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: broken\nload: {shape: wobbly, users: 1, duration_s: 5}\nassertions: {}\n")
    done = subprocess.run(
        [str(TESTBED), "run", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        check=False,
    )
    assert done.returncode == 2
    output = done.stderr.strip()  # errors go to stderr, as from every command (testbed/cli_helpers.py)
    assert f"{bad}:2: load.shape" in output.replace("\n", "")
    assert "fix:" in output


def test_probe_requests_are_read_from_the_journal(tmp_path: Path) -> None:
    probe = {
        "activity": {"provider": {"func": "gateway_success_ratio", "arguments": {"requests": 5}}},
        "status": "succeeded",
    }
    journal = {"steady_states": {"before": {"probes": [probe]}, "after": {"probes": [probe]}}, "run": []}
    path = tmp_path / "journal.json"
    path.write_text(json.dumps(journal))
    assert probe_requests_sent(path) == 10
    assert probe_requests_sent(tmp_path / "missing.json") == 0
