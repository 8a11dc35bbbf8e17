"""Each service's committed OpenAPI document against what the live service serves (schemathesis).

Requests are generated from ``services/<name>/openapi.json`` (valid and invalid ones), sent to the
service on 127.0.0.1, and every answer is checked against the document: status codes, content types,
bodies, ``Allow`` on OPTIONS, invalid input refused, valid input accepted; the documented links are
followed (stateful phase). Zero mismatches is the only pass. The run is bounded (examples per operation,
request timeout, wall time) and reproducible: the seed is printed, ``TESTBED_CONTRACT_SEED`` replays it.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

from services import openapi as openapi_documents
from testbed.context import RenderContext
from tests.services.shop_client import url

pytestmark = pytest.mark.native

SERVICES = ("gateway", "inventory", "orders", "payments", "alert_sink")
MAX_EXAMPLES = 15  # per operation and phase: bounds the five runs to ~2 min on the idle machine
RUN_TIMEOUT_S = 240
SEED = int(os.environ.get("TESTBED_CONTRACT_SEED", "20261202"))
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


def schemathesis_run(
    document: Path, base_url: str, report_dir: Path, auth: str | None
) -> subprocess.CompletedProcess[str]:
    # The credential goes in a header through a private config file, never on argv.
    config = report_dir / "schemathesis.toml"
    with os.fdopen(os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        out.write(f'headers = {{ Authorization = "Basic {auth}" }}\n' if auth else "")
    return subprocess.run(
        [
            str(SCHEMATHESIS),
            "--config-file",
            str(config),
            "run",
            str(document),
            "--url",
            base_url,
            "--checks",
            "all",
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            str(SEED),
            "--generation-database",
            "none",
            "--workers",
            "1",
            "--request-timeout",
            "10",
            "--no-color",
            "--output-truncate",
            "false",
            "--report",
            "junit",
            "--report-dir",
            str(report_dir),
        ],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        cwd=report_dir,
        check=False,
    )


@pytest.mark.parametrize("service", SERVICES)
def test_served_behaviour_matches_the_committed_openapi(
    native_stack: RenderContext, service: str, tmp_path: Path
):
    base = url(native_stack, service)
    assert base.startswith("http://127.0.0.1:"), base  # generated traffic stays on this machine
    auth = None
    if service == "alert_sink":  # the webhook takes Alertmanager's credential (ignored_auth checks it)
        credential = f"alertmanager:{native_stack.secrets.alert_sink_password}"
        auth = base64.b64encode(credential.encode()).decode()
    result = schemathesis_run(openapi_documents.committed_path(service), base, tmp_path, auth)
    tail = "\n".join(result.stdout.splitlines()[-120:])
    assert result.returncode == 0, (
        f"{service} does not serve what services/{service}/openapi.json says (seed {SEED}; "
        "fix the service or the generator services/common/openapi.py, never the check):\n"
        f"{tail}\n{result.stderr[-2000:]}"
    )
    # A run that tested nothing would also exit 0.
    assert " passed" in result.stdout and "Tested: 0" not in result.stdout, tail
