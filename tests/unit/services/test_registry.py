"""Service declarations: found by folder, start-ordered; a bad one is one line naming file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from services import registry
from services.registry import DeclarationError, discover


def _declare(root: Path, name: str, text: str) -> Path:
    (root / name).mkdir(parents=True)
    path = root / name / "service.yaml"
    path.write_text(text)
    return path


def test_the_shop_is_declared_in_start_order() -> None:
    names = registry.names()
    # The shop's services (a team's scaffolded ones come on top: tests/unit/scaffold).
    assert set(names) >= {"gateway", "inventory", "orders", "payments", "alert_sink"}
    assert names.index("gateway") > max(names.index("inventory"), names.index("orders"))
    assert registry.spec("gateway").compose_instance_name(1) == "gateway-2"
    assert registry.compose_names()["alert_sink"] == "alert-sink"


def test_a_folder_without_a_declaration_is_not_a_service(tmp_path: Path) -> None:
    (tmp_path / "common").mkdir()
    _declare(tmp_path, "shipping", "name: shipping\nports: [18085]\n")
    assert list(discover(tmp_path)) == ["shipping"]


def test_dependencies_start_first(tmp_path: Path) -> None:
    _declare(tmp_path, "a_front", "name: a_front\nports: [18085]\ndepends_on: [z_back, postgresql]\n")
    _declare(tmp_path, "z_back", "name: z_back\nports: [18086]\n")
    assert list(discover(tmp_path)) == ["z_back", "a_front"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: shipping\nports: []\n", r"shipping/service.yaml: ports: "),
        ("name: shipping\nports: [18085]\ndatabase: maybe\n", r"shipping/service.yaml: database: "),
        (
            "name: shipping\nports: [18085]\nqueues: {consume: [x]}\n",
            r"shipping/service.yaml: queues.consume: ",
        ),
        ("name: shipping\nports: [80]\n", r"shipping/service.yaml: \(top level\): .*port 80 is outside"),
        ("name: other\nports: [18085]\n", r"shipping/service.yaml: name: 'other' differs from its folder"),
        ("name: shipping\nports: [18085\n", r"shipping/service.yaml: not valid YAML"),
        ("- shipping\n", r"shipping/service.yaml: expected a mapping"),
        (
            "name: shipping\nports: [18085]\ngateway_routes: [{method: GET, path: x}]\n",
            r"shipping/service.yaml: gateway_routes.0.path: ",
        ),
    ],
)
def test_a_bad_declaration_names_its_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    _declare(tmp_path, "shipping", text)
    with pytest.raises(DeclarationError, match=message):
        discover(tmp_path)


def test_a_dependency_cycle_is_refused(tmp_path: Path) -> None:
    _declare(tmp_path, "a", "name: a\nports: [18085]\ndepends_on: [b]\n")
    _declare(tmp_path, "b", "name: b\nports: [18086]\ndepends_on: [a]\n")
    with pytest.raises(DeclarationError, match="depends_on: a cycle"):
        discover(tmp_path)


def test_a_declared_database_without_its_secret_is_one_clear_error(tmp_path: Path) -> None:
    from testbed import settings
    from testbed.context import RenderContext
    from testbed.native.services import db_password
    from testbed.secrets import Secrets

    ctx = RenderContext(mode="native", state_dir=tmp_path, ports=settings.declared_ports(), secrets=Secrets())
    assert db_password(ctx, "orders") == ctx.secrets.orders_db_password
    with pytest.raises(LookupError, match=r"services/shipping/service.yaml .*add shipping_db_password"):
        db_password(ctx, "shipping")
