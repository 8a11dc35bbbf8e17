"""ECS log lines: required fields, a unique event.id, the trace context, and redaction before writing."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from services.common import tracing
from services.common.logs import configure_logging, log_file
from services.common.redaction import MASK, redact, redact_text
from services.common.settings import ServiceSettings

CARD = "4111 1111 1111 1111"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("customer jane.doe@example.com ordered", "jane.doe@example.com"),
        (f"paid with card {CARD}", CARD),
        ("card 5500-0000-0000-0004 used", "5500-0000-0000-0004"),
        ("Authorization: Bearer eyJhbGciOi.payload.sig", "eyJhbGciOi.payload.sig"),
        ('{"password": "hunter2"}', "hunter2"),
        ("login password=s3cr3t&user=x", "s3cr3t"),
    ],
)
def test_sensitive_values_are_masked(text: str, secret: str):
    redacted = redact_text(text)
    assert secret not in redacted
    assert MASK in redacted


@pytest.mark.parametrize(
    "text",
    [
        "order 12345678-1234-1234-1234-123456789012 placed",  # UUID of digits only
        "trace 0af7651916cd43dd8448eb211c80319c",
        "1234567890123 is not a card (Luhn)",
        "GET /catalog 200",
    ],
)
def test_identifiers_and_plain_text_are_kept(text: str):
    assert redact_text(text) == text


def test_sensitive_keys_are_masked_whole_but_kept_paths_are_not():
    value = {"customer_email": "x", "trace": {"id": "4111111111111111"}, "note": "ok"}
    assert redact(value, keep={"trace.id"}) == {
        "customer_email": MASK,
        "trace": {"id": "4111111111111111"},
        "note": "ok",
    }


@pytest.fixture
def service_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    settings = ServiceSettings(service_name="orders", port=1, log_dir=tmp_path)  # type: ignore[call-arg]
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    configure_logging(settings)
    yield log_file(tmp_path, settings)
    for handler in list(root.handlers):
        handler.close()
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])


def _lines(path: Path) -> list[dict]:
    for handler in logging.getLogger().handlers:
        handler.flush()
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_line_has_the_contract_fields(service_log: Path):
    context = tracing.from_headers("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "req-42")
    with tracing.activate(context):
        logging.getLogger("shop.test").info("inside a request")
    logging.getLogger("shop.test").warning("outside any request")
    inside, outside = _lines(service_log)[-2:]
    for line in (inside, outside):
        assert line["service"]["name"] == "orders"
        assert line["event"]["dataset"] == "shop.orders.app"
        assert line["log"]["level"] in ("info", "warning")
        assert line["trace"]["id"] and line["transaction"]["id"] and line["event"]["id"]
        assert line["@timestamp"].endswith("Z")
    assert inside["trace"]["id"] == "0af7651916cd43dd8448eb211c80319c"
    assert inside["transaction"]["id"] == "req-42"
    assert inside["event"]["id"] != outside["event"]["id"]


def test_event_ids_are_unique(service_log: Path):
    for index in range(200):
        logging.getLogger("shop.test").info("line %d", index)
    ids = [line["event"]["id"] for line in _lines(service_log)]
    assert len(ids) == len(set(ids))


def test_lines_are_redacted_before_they_are_written(service_log: Path):
    logger = logging.getLogger("shop.test")
    logger.info("customer jane.doe@example.com pays with %s", CARD, extra={"user.password": "hunter2"})
    try:
        raise ValueError("token=abcdef123456 rejected")
    except ValueError:
        logger.exception("failed for jane.doe@example.com")
    written = service_log.read_text()
    for secret in ("jane.doe@example.com", CARD, "hunter2", "abcdef123456"):
        assert secret not in written
    assert MASK in written


def test_the_log_file_rotates(tmp_path: Path):
    settings = ServiceSettings(
        service_name="orders", port=1, log_dir=tmp_path, log_max_bytes=2000, log_backups=2
    )  # type: ignore[call-arg]
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    configure_logging(settings)
    try:
        for index in range(40):
            logging.getLogger("shop.test").info("line %d", index)
    finally:
        for handler in list(root.handlers):
            handler.close()
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
    current = log_file(tmp_path, settings)
    rotated = current.with_name(current.name + ".1")
    assert rotated.exists()
    assert current.stat().st_size <= 2000 and rotated.stat().st_size <= 2000
    assert not current.with_name(current.name + ".3").exists()  # bounded by log_backups
