"""``stack/versions.json``: the JSON twin of ``stack/versions.yaml`` that ``flake.nix`` reads.

Nix has ``builtins.fromJSON`` but no YAML reader, so the YAML stays the one source and the JSON is a
committed render of it; a unit test fails when the two drift (fix: ``testbed versions render``).
"""

from __future__ import annotations

import json
from pathlib import Path

from testbed import settings

VERSIONS_JSON = settings.STACK_DIR / "versions.json"


def render_versions_json() -> str:
    """The JSON text ``stack/versions.json`` must hold (sorted keys, stable for diffs)."""
    return json.dumps(settings.versions(), indent=2, sort_keys=True) + "\n"


def write_versions_json(path: Path = VERSIONS_JSON) -> Path:
    path.write_text(render_versions_json())
    return path
