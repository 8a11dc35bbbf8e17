"""ECS JSON logs (Elastic's ``ecs-logging``), one event per line, to a rotated per-instance file or stdout.

Every line carries ``service.name``, ``trace.id``, ``span.id``, ``transaction.id`` (the request id),
``event.dataset``, ``log.level`` and a unique ``event.id`` (the shipper's Elasticsearch ``_id``: a
replayed line never makes a second document). Sensitive values are redacted before the line is written.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

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
# ``extra={ECS_FIELDS: {...}}``: fields already nested as ECS wants them and already redacted by the
# caller, merged as they are (the access line of every request; spares the per-field de-dotting).
ECS_FIELDS = "_ecs"


class ServiceContextFilter(logging.Filter):
    """Stamps each record with the service identity and the active trace context.

    One private attribute (``_shop``) rather than six dotted extras: the formatter lays these fields
    out directly, and a caller's own ``extra`` (``trace.id`` of a consumed message...) still wins.
    """

    def __init__(self, service: str, node: str) -> None:
        super().__init__()
        self.service = service
        self.node = node
        self.datasets = (f"shop.{service}.app", f"shop.{service}.access")
        # Lines outside any request or message (start-up, shutdown) share this process's own trace.
        self.process_context = tracing.from_headers(None, f"{node}-lifecycle")

    def filter(self, record: logging.LogRecord) -> bool:
        context = tracing.current() or self.process_context
        record._shop = (self.service, self.node, self.datasets[record.name == ACCESS_LOGGER], context)
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
    _SKIPPED = frozenset(ecs_logging.StdlibFormatter._LOGRECORD_DICT | _DROPPED)

    def __init__(self) -> None:
        super().__init__(exclude_fields=["log.original", "process.thread", "process.name", "log.origin"])
        self._clock = _Timestamps()

    def _timestamp(self, record: logging.LogRecord) -> str:
        return self._clock.render(int(record.created), int(record.msecs))

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
            result = _spec_order(result)
        else:
            # Laid out in the spec's order from the start; the rest keeps this insertion order.
            result = {
                "@timestamp": self._timestamp(record),
                "log.level": record.levelname.lower(),
                "message": record.getMessage(),
                "ecs.version": ecs_logging.ECS_VERSION,
                "log": {"logger": record.name},
                "process": {"pid": record.process},
            }
        shop = attributes.get("_shop")
        if shop is not None:
            service, node, dataset, context = shop
            result["service"] = {"name": service, "node": {"name": node}}
            result["event"] = {"dataset": dataset}
            result["trace"] = {"id": context.trace_id}
            result["span"] = {"id": context.span_id}
            result["transaction"] = {"id": context.request_id}
        # Free text can hold anything: the message, the error and whatever a caller passed.
        result["message"] = redact_text(result["message"])
        nested = attributes.get(ECS_FIELDS)
        if nested is not None:
            # Already nested and redacted by the caller (the access line): merged one level deep.
            for key, value in nested.items():
                existing = result.get(key)
                if existing.__class__ is dict:
                    existing.update(value)
                else:
                    result[key] = value
        for dotted in attributes.keys() - self._SKIPPED:  # the caller's extras
            value = attributes[dotted]
            if value is None or dotted[0] == "_":
                continue
            _set_dotted(result, dotted, value if dotted in _TRUSTED_FIELDS else redact_field(dotted, value))
        result.setdefault("event", {})["id"] = _event_id()
        return result

    def format(self, record: logging.LogRecord) -> str:
        # Formatted once per record, whatever the number of handlers (one line, one event.id).
        line = record.__dict__.get("_ecs_line")
        if line is None:
            line = orjson.dumps(
                self.format_to_ecs(record), default=str, option=orjson.OPT_NON_STR_KEYS
            ).decode()
            record.__dict__["_ecs_line"] = line
        return line


class _Timestamps:
    """ecs-logging's rendering of ``@timestamp`` ("%Y-%m-%dT%H:%M:%S" + ".%03dZ", UTC), strftime'd once
    per second."""

    def __init__(self) -> None:
        self._second = -1
        self._second_text = ""

    def render(self, second: int, millisecond: int) -> str:
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._second_text}.{millisecond:03d}Z"

    def now(self) -> str:
        milliseconds = time.time_ns() // 1_000_000
        return self.render(milliseconds // 1000, milliseconds % 1000)


def _spec_order(document: dict[str, Any]) -> dict[str, Any]:
    """ecs-logging's document with ``@timestamp``, ``log.level`` (top-level, never nested) and
    ``message`` first, the ECS logging spec's order; the other fields follow as they were."""
    log = document.get("log")
    level = log.pop("level", None) if isinstance(log, dict) else document.pop("log.level", None)
    if isinstance(log, dict) and not log:
        del document["log"]
    head = {
        "@timestamp": document.pop("@timestamp", None),
        "log.level": level,
        "message": document.pop("message", ""),
    }
    return head | document


@functools.cache
def _path(dotted: str) -> tuple[tuple[str, ...], str]:
    *parents, leaf = dotted.split(".")
    return tuple(parents), leaf


def _set_dotted(document: dict[str, Any], dotted: str, value: Any) -> None:
    """``document["a"]["b"] = value`` for ``a.b`` (ECS field names are dotted paths)."""
    parents, leaf = _path(dotted)
    node = document
    for part in parents:
        child = node.get(part)
        if child.__class__ is not dict:
            child = node[part] = {}
        node = child
    node[leaf] = value


_ids = random.Random()  # seeded from the OS at import, per process
os.register_at_fork(after_in_child=_ids.seed)  # a forked child must not repeat its parent's ids


def _event_id() -> str:
    # Unique, not secret: a seeded PRNG spares a getrandom() syscall per line (uuid4 makes one). Laid out
    # as a version-4 UUID (version and variant bits set) without building a uuid.UUID.
    bits = _ids.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET
    text = f"{bits:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


class RotatingLogFile(logging.Handler):
    """Appends each line with one ``write(2)`` to a size-rotated file (``<name>.1`` ... ``<name>.N``).

    No userspace buffer, so a line is in the file (the shipper's source) once its request is answered,
    even if the process is killed the next instant; and none of the stdlib file handlers' layers (text
    stream, per-line flush under a second lock, seek/stat per line to decide on rotation), which cost
    ~10 µs per line, i.e. per request.
    """

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        super().__init__()
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._fd = self._open()
        self._written = os.fstat(self._fd).st_size

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._append((self.format(record) + "\n").encode())
        except Exception:
            self.handleError(record)

    def write_line(self, data: bytes) -> None:
        """Append one already formatted line (ending in a newline): the access log's way in."""
        with self.lock:  # type: ignore[union-attr]  # Handler.createLock ran in __init__
            self._append(data)

    def _append(self, data: bytes) -> None:
        if self._written + len(data) > self.max_bytes and self._written:
            self._rotate()
        os.write(self._fd, data)
        self._written += len(data)

    def _rotate(self) -> None:
        os.close(self._fd)
        if self.backups > 0:
            for index in range(self.backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{index}")
                if older.exists():
                    older.replace(self.path.with_name(f"{self.path.name}.{index + 1}"))
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink(missing_ok=True)
        self._fd = self._open()
        self._written = 0

    def close(self) -> None:
        with self.lock:  # type: ignore[union-attr]  # Handler.createLock ran in __init__
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
        super().close()


class AccessLog(Protocol):
    """Where the instrumentation writes the access line of every request (one per request, no sampling)."""

    def write(
        self,
        level: int,
        method: str,
        path: str,
        status: int,
        route: str,
        duration_s: float,
        context: tracing.TraceContext,
        client: tuple[str, int] | None,
    ) -> None: ...


_WEB = ("web",)  # event.category, serialized as a JSON list


def _access_fields(
    method: str,
    redacted_path: str,
    status: int,
    route: str,
    duration_s: float,
    context: tracing.TraceContext,
    client: tuple[str, int] | None,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The access line's own ``event``, ``http``, ``url`` and ``client`` fields."""
    return (
        {
            "kind": "event",
            "category": _WEB,
            "duration": int(duration_s * 1e9),
            "outcome": "failure" if status >= 500 else "success",
        },
        {
            "request": {"method": method, "id": context.request_id},
            "response": {"status_code": status},
            "route": route,
        },
        {"path": redacted_path},
        {"address": client[0]} if client else {},
    )


class LoggerAccessLog:
    """The access line as a record of the ``shop.access`` logger: the way when the process has not
    configured the services' logging (a test app, a library use), so its own handlers get every line."""

    def __init__(self) -> None:
        self.logger = logging.getLogger(ACCESS_LOGGER)

    def write(
        self,
        level: int,
        method: str,
        path: str,
        status: int,
        route: str,
        duration_s: float,
        context: tracing.TraceContext,
        client: tuple[str, int] | None,
    ) -> None:
        event, http, url, client_fields = _access_fields(
            method, redact_text(path), status, route, duration_s, context, client
        )
        self.logger.log(
            level,
            "%s %s %s",
            method,
            path,
            status,
            extra={ECS_FIELDS: {"event": event, "http": http, "url": url, "client": client_fields}},
        )


class DirectAccessLog:
    """The access line assembled here and handed to the log file as one ``write(2)``: no LogRecord, no
    filter, handler or formatter on the path every request takes (they cost about as much as the rest
    of the instrumentation together).

    The line is the one ``RedactingEcsFormatter`` makes of the same record, field for field and in the
    same order (tests/unit/services compare the two): ``@timestamp``, ``log.level``, ``message`` first,
    the service, trace and transaction fields, a fresh ``event.id``. The path (the client's text) is
    redacted; the message is made of the trusted method and status around the redacted path.
    """

    def __init__(self, service: str, node: str, write: Callable[[bytes], None]) -> None:
        self._write = write
        self._clock = _Timestamps()
        self._dataset = f"shop.{service}.access"
        self._logger = {"logger": ACCESS_LOGGER}
        self._process = {"pid": os.getpid()}
        self._service = {"name": service, "node": {"name": node}}
        self._levels = {
            level: logging.getLevelName(level).lower()
            for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL)
        }

    def write(
        self,
        level: int,
        method: str,
        path: str,
        status: int,
        route: str,
        duration_s: float,
        context: tracing.TraceContext,
        client: tuple[str, int] | None,
    ) -> None:
        redacted = redact_text(path)
        event, http, url, client_fields = _access_fields(
            method, redacted, status, route, duration_s, context, client
        )
        event = {"dataset": self._dataset, **event, "id": _event_id()}
        document = {
            "@timestamp": self._clock.now(),
            "log.level": self._levels.get(level) or logging.getLevelName(level).lower(),
            "message": f"{method} {redacted} {status}",
            "ecs.version": ecs_logging.ECS_VERSION,
            "log": self._logger,
            "process": self._process,
            "service": self._service,
            "event": event,
            "trace": {"id": context.trace_id},
            "span": {"id": context.span_id},
            "transaction": {"id": context.request_id},
            "http": http,
            "url": url,
            "client": client_fields,
        }
        try:
            self._write(orjson.dumps(document, option=orjson.OPT_APPEND_NEWLINE))
        except Exception:
            # As logging does with a failing handler: said on stderr, the request is still answered.
            sys.stderr.write("--- Logging error (access line) ---\n")
            traceback.print_exc(file=sys.stderr)


# The instrumentation's access log: through the logging module until ``configure_logging`` sets up the
# service's own destination, then written there directly.
access_log: AccessLog = LoggerAccessLog()


def _stream_writer(handler: logging.StreamHandler[Any]) -> Callable[[bytes], None]:
    def write(data: bytes) -> None:
        with handler.lock:  # type: ignore[union-attr]  # Handler.createLock ran in __init__
            handler.stream.write(data.decode())
            handler.flush()

    return write


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
    global access_log
    if settings.log_dir is not None:
        settings.log_dir.mkdir(parents=True, exist_ok=True)
        handler = file = RotatingLogFile(
            log_file(settings.log_dir, settings), settings.log_max_bytes, settings.log_backups
        )
        access_log = DirectAccessLog(settings.service_name, settings.instance_name, file.write_line)
    else:
        handler = stream = logging.StreamHandler(sys.stdout)
        access_log = DirectAccessLog(settings.service_name, settings.instance_name, _stream_writer(stream))
    handlers = [handler]
    # Record attributes no line uses (ECS lines carry neither thread, multiprocessing name, asyncio task
    # nor caller location): not computed, per the logging HOWTO's "Optimization" section.
    logging.logThreads = False
    logging.logMultiprocessing = False
    logging.logAsyncioTasks = False  # type: ignore[attr-defined]  # 3.12 has it, typeshed lags
    logging._srcfile = None  # type: ignore[attr-defined]  # the documented switch for caller lookup
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
