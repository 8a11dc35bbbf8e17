"""ECS log lines: required fields, a unique event.id, the trace context, and redaction before writing."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import ecs_logging
import pytest

from services.common import logs, tracing
from services.common.logs import (
    ACCESS_LOGGER,
    LoggerAccessLog,
    RedactingEcsFormatter,
    ServiceContextFilter,
    configure_logging,
    log_file,
)
from services.common.redaction import MASK, redact, redact_text
from services.common.settings import ServiceSettings
from tests.unit.services.ecs_spec import violations

CARD = "4111 1111 1111 1111"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("customer jane.doe@example.com ordered", "jane.doe@example.com"),
        (f"paid with card {CARD}", CARD),
        ("card 5500-0000-0000-0004 used", "5500-0000-0000-0004"),
        # Followed by more digits (an access log line's status): found by the privacy scan in a live run.
        ("GET /catalog/4111111111111111 404", "4111111111111111"),
        (f"card {CARD} 404", CARD),
        ("amex 3782 822463 10005 on file", "3782 822463 10005"),
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
    with _configured(settings):
        yield log_file(tmp_path, settings)


@contextlib.contextmanager
def _configured(settings: ServiceSettings) -> Iterator[None]:
    """``configure_logging(settings)``, then the root logger and the access log as they were."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logs.access_log)
    configure_logging(settings)
    try:
        yield
    finally:
        for handler in list(root.handlers):
            handler.close()
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
        logs.access_log = saved[2]


def _lines(path: Path) -> list[dict]:
    for handler in logging.getLogger().handlers:
        handler.flush()
    return [json.loads(line) for line in path.read_text().splitlines()]


def _raw_lines(path: Path) -> list[str]:
    for handler in logging.getLogger().handlers:
        handler.flush()
    return path.read_text().splitlines()


def test_every_line_has_the_contract_fields(service_log: Path):
    context = tracing.from_headers("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "req-42")
    with tracing.activate(context):
        logging.getLogger("shop.test").info("inside a request")
    logging.getLogger("shop.test").warning("outside any request")
    inside, outside = _lines(service_log)[-2:]
    for line in (inside, outside):
        assert line["service"]["name"] == "orders"
        assert line["event"]["dataset"] == "shop.orders.app"
        assert line["log.level"] in ("info", "warning")
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
    with _configured(settings):
        for index in range(40):
            logging.getLogger("shop.test").info("line %d", index)
    current = log_file(tmp_path, settings)
    rotated = current.with_name(current.name + ".1")
    assert rotated.exists()
    assert current.stat().st_size <= 2000 and rotated.stat().st_size <= 2000
    assert not current.with_name(current.name + ".3").exists()  # bounded by log_backups


def test_lines_follow_the_ecs_logging_spec(service_log: Path):
    """@timestamp, log.level, message first and in that order, log.level top-level: on every kind of line."""
    logger = logging.getLogger("shop.test")
    context = tracing.from_headers(None, "req-ecs")
    with tracing.activate(context):
        logger.info("plain")
        logger.warning("with extras", extra={"order.id": "o-1", "event.action": "x", "labels": {"a": "b"}})
        logging.getLogger("shop.access").error("GET /x 500", extra={"http.response.status_code": 500})
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("with an exception")
    logger.info("stack", stack_info=True)
    lines = _raw_lines(service_log)
    assert len(lines) == 5
    for line in lines:
        assert violations(line) == [], line
    assert [json.loads(line)["log.level"] for line in lines] == ["info", "warning", "error", "error", "info"]
    assert json.loads(lines[3])["error"]["type"] == "ValueError"


@pytest.mark.parametrize(
    ("line", "broken"),
    [
        (
            '{"log.level":"info","@timestamp":"2026-01-01T00:00:00.000Z","message":"m","ecs.version":"1.6.0"}',
            "first fields",
        ),
        (
            '{"@timestamp":"2026-01-01T00:00:00.000Z","log":{"level":"info"},"message":"m","ecs.version":"1"}',
            "first fields",
        ),
        ('{"@timestamp":"2026-01-01T00:00:00.000Z","log.level":"info","message":"m"}', "ecs.version"),
        ('{"@timestamp":"yesterday","log.level":"info","message":"m","ecs.version":"1"}', "ISO 8601"),
        ('{"@timestamp":"2026-01-01T00:00:00Z","log.level":"info","message":3,"ecs.version":"1"}', "string"),
        (
            '{"@timestamp":"2026-01-01T00:00:00Z","log.level":"info","message":"m","ecs.version":"1",'
            '"log":{"level":"x"}}',
            "nested",
        ),
    ],
)
def test_the_spec_checks_catch_each_broken_rule(line: str, broken: str):
    assert any(broken in found for found in violations(line)), violations(line)


def test_the_fast_line_matches_ecs_logging_field_for_field(service_log: Path):
    """Records without an exception are assembled without ecs-logging: the fields must be the library's."""
    library = ecs_logging.StdlibFormatter(
        exclude_fields=["log.original", "process.thread", "process.name", "log.origin"]
    )
    library.converter = time.gmtime
    record = logging.LogRecord("shop.test", logging.WARNING, __file__, 1, "hello %s", ("x",), None)
    record.__dict__.update({"service.name": "orders", "http.response.status_code": 404})
    expected = json.loads(library.format(record))
    ours = json.loads(RedactingEcsFormatter().format(record))
    assert ours.pop("event")["id"]  # ours adds the event id, nothing else
    assert ours == expected


def _keys_in_order(document: object) -> object:
    """The document's keys, nested, in their written order (values left out)."""
    if isinstance(document, dict):
        return [(key, _keys_in_order(value)) for key, value in document.items()]
    return None


@pytest.mark.parametrize(
    ("level", "path", "status", "client"),
    [
        (logging.INFO, "/catalog", 200, ("10.0.0.7", 5555)),
        (logging.WARNING, f"/catalog/{CARD.replace(' ', '')}", 404, None),  # redacted in path and message
        (logging.ERROR, "/orders/jane.doe@example.com", 503, ("127.0.0.1", 1)),
        (logging.DEBUG, "/healthz", 200, ("127.0.0.1", 1)),
    ],
)
def test_the_direct_access_line_is_the_formatters_line(
    service_log: Path, level: int, path: str, status: int, client: tuple[str, int] | None
):
    """The access line written without logging.Logger: the same fields in the same order as the line
    the ECS formatter makes of the logger's record for the same request (the event id and the
    timestamp's value aside), the ECS logging spec kept, the path redacted."""
    logging.getLogger().setLevel(logging.DEBUG)
    context = tracing.from_headers("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "req-9")
    request = (level, "GET", path, status, "/catalog/{product_id}", 0.0123, context, client)
    logs.access_log.write(*request)
    (direct_line,) = _raw_lines(service_log)[-1:]

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    keep = Keep()
    access = logging.getLogger(ACCESS_LOGGER)
    access.addHandler(keep)
    access.propagate = False
    try:
        with tracing.activate(context):  # as in the instrumentation: the request's context is current
            LoggerAccessLog().write(*request)
            ServiceContextFilter("orders", "orders-0").filter(records[0])
    finally:
        access.removeHandler(keep)
        access.propagate = True
    (record,) = records
    formatter_line = RedactingEcsFormatter().format(record)

    assert violations(direct_line) == [], direct_line
    direct, expected = json.loads(direct_line), json.loads(formatter_line)
    assert _keys_in_order(direct) == _keys_in_order(expected)
    for document in (direct, expected):
        assert document["event"].pop("id")
        assert document.pop("@timestamp").endswith("Z")
    assert direct == expected
    assert direct["log.level"] == logging.getLevelName(level).lower()
    assert direct["event"]["dataset"] == "shop.orders.access"
    assert direct["trace"]["id"] == "0af7651916cd43dd8448eb211c80319c"
    for secret in (CARD.replace(" ", ""), "jane.doe@example.com"):
        assert secret not in direct_line


def test_every_access_line_is_written_once(service_log: Path):
    """No sampling: n requests, n access lines, each with its own event id."""
    context = tracing.from_headers(None, "req-n")
    for index in range(500):
        logs.access_log.write(logging.INFO, "GET", f"/p/{index}", 200, "/p/{i}", 0.001, context, None)
    lines = [line for line in _lines(service_log) if line["transaction"]["id"] == "req-n"]
    assert sorted(line["url"]["path"] for line in lines) == sorted(f"/p/{index}" for index in range(500))
    assert len({line["event"]["id"] for line in lines}) == 500
