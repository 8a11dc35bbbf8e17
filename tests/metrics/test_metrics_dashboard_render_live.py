"""`testbed dashboards render` against the live native stack: a plot per panel, titled as in Grafana, and
a panel without data flagged instead of drawn empty."""

from __future__ import annotations

import json
import re
import shutil
from html import unescape
from pathlib import Path

import pytest

from testbed.context import RenderContext
from testbed.metrics.dashboard_render import render
from testbed.metrics.dashboards import DASHBOARDS_DIR

pytestmark = pytest.mark.native


@pytest.fixture(scope="module")
def page(native_stack: RenderContext, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[str]]:
    directory = tmp_path_factory.mktemp("dashboards")
    for path in DASHBOARDS_DIR.glob("*.json"):
        shutil.copy(path, directory)
    # A sabotaged copy of one panel: its metric does not exist.
    services = json.loads((DASHBOARDS_DIR / "testbed-services.json").read_text())
    bogus = next(p for p in services["panels"] if p["title"] == "Instances up")
    bogus = {
        **bogus,
        "title": "Bogus panel",
        "targets": [{**bogus["targets"][0], "expr": "no_such_metric_xyz"}],
    }
    (directory / "bogus.json").write_text(json.dumps({**services, "title": "Bogus", "panels": [bogus]}))
    rendered = render(native_stack, 15 * 60, directory / "out" / "dashboards.html", directory=directory)
    return rendered.path.read_text(), [f"{p.dashboard} / {p.title}" for p in rendered.flagged]


def test_every_committed_panel_is_on_the_page_under_its_grafana_title(page: tuple[str, list[str]]) -> None:
    html, _ = page
    titles = [
        panel["title"]
        for path in DASHBOARDS_DIR.glob("*.json")
        for panel in json.loads(path.read_text())["panels"]
        if panel["type"] != "row"
    ]
    shown = [unescape(title) for title in re.findall(r"<h4>([^<]*)</h4>", html)]
    assert len(titles) > 30
    assert sorted(title for title in shown if title != "Bogus panel") == sorted(titles)


def test_panels_with_data_are_plotted_and_the_page_is_self_contained(page: tuple[str, list[str]]) -> None:
    html, flagged = page
    images = re.findall(r'<h4>([^<]*)</h4>\s*<img alt="[^"]*" src="data:image/png;base64,', html)
    assert "Instances up" in images and "Scrape up" in images and "PostgreSQL up" in images
    assert len(images) + len(flagged) == len(re.findall(r"<h4>", html))
    assert not re.search(r'(src|href)="(https?:)?//', html), "external resources: the page must stand alone"


def test_a_panel_without_data_is_flagged_not_drawn(page: tuple[str, list[str]]) -> None:
    html, flagged = page
    assert "Bogus / Bogus panel" in flagged
    block = html.split("<h4>Bogus panel</h4>", 1)[1].split("</div>", 1)[0]
    assert "No data in this range" in block and "<img" not in block
    assert "Bogus / Bogus panel" in re.search(r'class="summary">(.*?)</p>', html, re.S).group(1)  # type: ignore[union-attr]


def test_cli_writes_the_page_and_refuses_a_bad_range(tmp_path: Path, native_stack: RenderContext) -> None:
    import subprocess
    import sys

    cli = str(Path(sys.executable).parent / "testbed")
    bad = subprocess.run([cli, "dashboards", "render", "--since", "soon"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error: --since 'soon' is not a duration")
    out = tmp_path / "d.html"
    done = subprocess.run(
        [cli, "dashboards", "render", "--since", "5m", "-o", str(out)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert out.stat().st_size > 10_000 and re.match(r"wrote .*: \d+ panels, \d+ without data", done.stdout)
