"""ECS JSON logs (Elastic's ``ecs-logging``), one event per line, to a rotated per-instance file or stdout.

Every line carries ``service.name``, ``trace.id``, ``span.id``, ``transaction.id`` (the request id),
``event.dataset``, ``log.level`` and a unique ``event.id`` (the shipper's Elasticsearch ``_id``: a
replayed line never makes a second document). Sensitive values are redacted before the line is written.
"""

from __future__ import annotations

import functools
import logging
import logging.handlers
import os
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import ecs_logging
import orjson

from services.common import tracing
from services.common.redaction import redact_field, redact_text, redact_tree
from services.common.settings import ServiceSettings

# Fields the instrumentation itself fills with identifiers, enums or numbers: written as they are
# (identifiers may look like card numbers). Every other field is redacted before the line is written.
_TRUSTED_FIELDS = frozenset(
    {
        "service.name",
        "service.node.name",
        "event.dataset",
        "event.kind",
        "event.category",
        "event.action",
        "event.outcome",
        "event.duration",
        "trace.id",
        "span.id",
        "transaction.id",
        "http.request.id",
        "http.request.method",
        "http.response.status_code",
        "http.route",
        "client.address",
        "order.id",
        "amqp.message_id",
        "amqp.routing_key",
        "amqp.redelivered",
        "amqp.queue",
        "rule.name",
        "alert.severity",
        "alert.fingerprint",
        "alert.starts_at",
        "alert.ends_at",
        "alert.receiver",
    }
)
_DROPPED = frozenset({"color_message", "taskName"})  # uvicorn's ANSI copy of the message; asyncio's task
ACCESS_LOGGER = "shop.access"


class ServiceContextFilter(logging.Filter):
    """Stamps each record with the service identity and the active trace context."""

    def __init__(self, service: str, node: str) -> None:
        super().__init__()
        self.service = service
        self.node = node
        # Lines outside any request or message (start-up, shutdown) share this process's own trace.
        self.process_context = tracing.from_headers(None, f"{node}-lifecycle")

    def filter(self, record: logging.LogRecord) -> bool:
        context = tracing.current() or self.process_context
        record.__dict__.setdefault("service.name", self.service)
        record.__dict__.setdefault("service.node.name", self.node)
        dataset = "access" if record.name == ACCESS_LOGGER else "app"
        record.__dict__.setdefault("event.dataset", f"shop.{self.service}.{dataset}")
        record.__dict__.setdefault("trace.id", context.trace_id)
        record.__dict__.setdefault("span.id", context.span_id)
        record.__dict__.setdefault("transaction.id", context.request_id)
        return True


class RedactingEcsFormatter(ecs_logging.StdlibFormatter):
    """ECS formatter that adds ``event.id``, redacts every value but identifiers, and writes the line
    in the order the ECS logging spec asks: ``@timestamp``, ``log.level``, ``message`` first, with
    ``log.level`` a top-level dotted key, then the other fields nested, keys sorted.

    A record without an exception (every access line) is built here directly, field for field as
    ecs-logging builds it (tests/unit/services compare the two); ecs-logging's generic
    flatten/de-dot/merge and its ``json.dumps(sort_keys=True)`` cost ~5x the rest of the line on every
    request. A record with an exception or a stack goes through ecs-logging itself.
    """

    converter = time.gmtime  # @timestamp in UTC whatever the host's zone

    def __init__(self) -> None:
        super().__init__(exclude_fields=["log.original", "process.thread", "process.name", "log.origin"])
        self._second = -1
        self._second_text = ""

    def _timestamp(self, record: logging.LogRecord) -> str:
        # ecs-logging's own rendering ("%Y-%m-%dT%H:%M:%S" + ".%03dZ"), strftime'd once per second.
        second = int(record.created)
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._second_text}.{int(record.msecs):03d}Z"

    def format_to_ecs(self, record: logging.LogRecord) -> dict[str, Any]:
        attributes = record.__dict__
        if record.exc_info or record.stack_info:
            # ecs-logging builds the error fields; it sees the standard attributes only, our dotted
            # extras are merged below in one pass.
            standard = {key: value for key, value in attributes.items() if key in self._LOGRECORD_DICT}
            record.__dict__ = standard
            try:
                result = super().format_to_ecs(record)
            finally:
                record.__dict__ = attributes
            if "error" in result:
                result["error"] = redact_tree(result["error"], {})
        else:
            result = {
                "@timestamp": self._timestamp(record),
                "log": {"level": record.levelname.lower(), "logger": record.name},
                "message": record.getMessage(),
                "ecs.version": ecs_logging.ECS_VERSION,
                "process": {"pid": record.process},
            }
        # Free text can hold anything: the message, the error and whatever a caller passed.
        result["message"] = redact_text(result["message"])
        for dotted, value in attributes.items():
            if (
                value is None
                or dotted in self._LOGRECORD_DICT
                or dotted.startswith("_")
                or dotted in _DROPPED
            ):
                continue
            _set_dotted(result, dotted, value if dotted in _TRUSTED_FIELDS else redact_field(dotted, value))
        result.setdefault("event", {})["id"] = _event_id()
        return result

    def format(self, record: logging.LogRecord) -> str:
        # Formatted once per record, whatever the number of handlers (one line, one event.id).
        line = record.__dict__.get("_ecs_line")
        if line is None:
            line = ecs_line(self.format_to_ecs(record))
            record.__dict__["_ecs_line"] = line
        return line


def _fallback(value: Any) -> str:
    return str(value)


def ecs_line(document: dict[str, Any]) -> str:
    """One JSON line: ``@timestamp``, ``log.level``, ``message`` first (the ECS logging spec's order,
    ``log.level`` never nested), then every other field, keys sorted. ``document`` is consumed."""
    log = document.get("log")
    level = log.pop("level", None) if isinstance(log, dict) else document.pop("log.level", None)
    if isinstance(log, dict) and not log:
        del document["log"]
    head = orjson.dumps(
        {
            "@timestamp": document.pop("@timestamp", None),
            "log.level": level,
            "message": document.pop("message", ""),
        },
        default=_fallback,
    )
    if not document:
        return head.decode()
    rest = orjson.dumps(document, default=_fallback, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return (head[:-1] + b"," + rest[1:]).decode()


@functools.cache
def _path(dotted: str) -> tuple[str, ...]:
    return tuple(dotted.split("."))


def _set_dotted(document: dict[str, Any], dotted: str, value: Any) -> None:
    """``document["a"]["b"] = value`` for ``a.b`` (ECS field names are dotted paths)."""
    *parents, leaf = _path(dotted)
    node = document
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[leaf] = value


_ids = random.Random()  # seeded from the OS at import, per process
os.register_at_fork(after_in_child=_ids.seed)  # a forked child must not repeat its parent's ids


def _event_id() -> str:
    # Unique, not secret: a seeded PRNG spares a getrandom() syscall per line (uuid4 makes one).
    return str(uuid.UUID(int=_ids.getrandbits(128), version=4))


class RotatingLogFile(logging.handlers.RotatingFileHandler):
    """Size-based rotation that counts the bytes it writes.

    The stdlib handler decides by seeking the text stream and stat-ing the path on every line, a visible
    share of a request's cost when every request writes an access line. Overridden stdlib hooks keep
    their camelCase names.
    """

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        super().__init__(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        self._written = path.stat().st_size if path.exists() else 0

    def shouldRollover(self, record: logging.LogRecord) -> bool:
        return self._written + len(self.format(record)) + 1 > self.maxBytes > 0

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        self._written += len(self.format(record)) + 1  # characters: ECS lines are (almost) all ASCII

    def doRollover(self) -> None:
        super().doRollover()
        self._written = 0


def log_file(log_dir: Path, settings: ServiceSettings) -> Path:
    return log_dir / f"{settings.instance_name}.log"


def configure_logging(settings: ServiceSettings) -> None:
    """Route the root logger (and uvicorn's) through the ECS formatter to the log file, else stdout.

    One destination: with a log directory the shipper reads the file, and a copy on stdout (which
    supervisord would write to a second file) doubled the cost of every line.
    """
    formatter = RedactingEcsFormatter()
    context_filter = ServiceContextFilter(settings.service_name, settings.instance_name)
    handler: logging.Handler
    if settings.log_dir is not None:
        settings.log_dir.mkdir(parents=True, exist_ok=True)
        handler = RotatingLogFile(
            log_file(settings.log_dir, settings), settings.log_max_bytes, settings.log_backups
        )
    else:
        handler = logging.StreamHandler(sys.stdout)
    handlers = [handler]
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(context_filter)
        root.addHandler(handler)
    root.setLevel(settings.log_level)
    # uvicorn's own loggers propagate to ours; its access log is replaced by the instrumentation's.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    for noisy in ("aio_pika", "aiormq", "httpx", "httpcore", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
