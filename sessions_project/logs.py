"""Logs: one JSON object per line (or readable lines with LOG_FORMAT=console), every line of a
request carrying its request id.

structlog renders everything: our own lines (the request line of
`sessions_project.observability`) and, through its `ProcessorFormatter` on the standard
library's handler, every other library's (Django, gunicorn's access and error logs), so
there is one format whoever logs. The request id lives in a context variable (`REQUEST_ID`)
that the middleware sets for the request's duration; a processor puts it on every line, and
the problem documents carry it as `requestId` (sessions_project/errors.py).

Why structlog rather than a JSON formatter of our own on the standard library: the same
processors render both kinds of lines, JSON or readable (`ConsoleRenderer`) by one setting,
and our own lines skip the standard library's record machinery (half the cost per line).
django-structlog was not taken: it logs a start and an end line per request, and our one
line needs the route and the problem code, which its middleware does not know.

Used by settings.py (`logging_config`) and gunicorn_conf.py (`gunicorn_logconfig`); imports
neither Django's settings nor any app.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from contextvars import ContextVar
from typing import Any, TextIO

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
# What a client may send as X-Request-ID: short, and nothing a log line or header could be
# bent by (no spaces, quotes, newlines).
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")

LOG_FORMATS = ("json", "console")


def request_id_from(header: str | None) -> str:
    """The client's X-Request-ID when it is sane, else a new one (32 hex digits)."""
    if header and SANE_REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def add_request_id(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """The current request's id on every line logged while it is served, whoever logs it."""
    request_id = REQUEST_ID.get()
    if request_id is not None:
        event_dict.setdefault("request_id", request_id)
    return event_dict


def gunicorn_access_fields(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """gunicorn's access line as fields (its record's args, passed on as `positional_args`, are
    the request's atoms), picked one by one: never its request headers, which hold tokens."""
    atoms = event_dict.pop("positional_args", None)
    record = event_dict.get("_record")
    if record is None or record.name != "gunicorn.access" or not isinstance(atoms, dict):
        return event_dict
    try:
        event_dict.update(
            event="access",
            remote=atoms["h"],
            method=atoms["m"],
            path=atoms["U"],
            status=int(atoms["s"]),
            bytes=atoms["B"],
            duration_ms=round(int(atoms["D"]) / 1000, 3),
            request_id=atoms["{x-request-id}o"],
            user_agent=atoms["a"],
        )
    except (KeyError, TypeError, ValueError):
        pass  # not the atoms we know: the plain message stays
    return event_dict


# The members a reader looks for first, in this order; the rest follow as they came.
LEADING_KEYS = ("time", "level", "logger", "event", "request_id")


def leading_keys_first(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    ordered = {key: event_dict.pop(key) for key in LEADING_KEYS if key in event_dict}
    ordered.update(event_dict)
    return ordered


def _dumps(value: Any, **kwargs: Any) -> str:
    return orjson.dumps(value, default=kwargs.get("default", str)).decode()


def _shared_processors() -> list[Processor]:
    """What every line gets, structlog's own and the standard library's alike."""
    return [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
        add_request_id,
    ]


def _renderer(log_format: str) -> list[Processor]:
    if log_format == "console":
        return [structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty(), timestamp_key="time")]
    return [
        structlog.processors.format_exc_info,
        leading_keys_first,
        structlog.processors.JSONRenderer(serializer=_dumps),
    ]


def formatter_config(log_format: str, *, foreign: list[Processor] | None = None) -> dict[str, Any]:
    """A dictConfig formatter that renders standard-library records like structlog's
    (`foreign`: processors that read the records' args, which they get as `positional_args`)."""
    return {
        "()": structlog.stdlib.ProcessorFormatter,
        "pass_foreign_args": bool(foreign),
        "processors": [structlog.stdlib.ProcessorFormatter.remove_processors_meta, *_renderer(log_format)],
        "foreign_pre_chain": [*_shared_processors(), *(foreign or [])],
    }


class StandardError:
    """Where structlog's own lines go: standard error as it is at each write (`stream` set
    instead by tests), one write per line."""

    stream: TextIO | None = None

    def write(self, text: str) -> None:
        (self.stream or sys.stderr).write(text)

    def flush(self) -> None:
        (self.stream or sys.stderr).flush()


OUTPUT = StandardError()


def configure_structlog(log_format: str, level: str) -> None:
    """Our own lines (the request line, the sweeper's) are rendered by structlog and written
    straight out, not through the standard library's records and handlers: half the cost on
    the hot path (a request line: some 20 µs instead of 50). The same processors and renderer
    as `formatter_config`, the same level: the lines look alike whoever wrote them."""
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
            add_request_id,
            *_renderer(log_format),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping().get(level, logging.INFO)),
        logger_factory=structlog.WriteLoggerFactory(file=OUTPUT),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> Any:
    """A structlog logger whose lines say `logger: name`, as the standard library's do. Call it
    once Django's settings are loaded (they configure structlog), not at import."""
    return structlog.get_logger().bind(logger=name)


def logging_config(log_format: str, level: str) -> dict[str, Any]:
    """Django's LOGGING: every logger through one stderr handler and the structlog formatter."""
    configure_structlog(log_format, level)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"structured": formatter_config(log_format)},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "INFO"},
            # Our request line says the same as django.request's 4xx/5xx warnings, with more:
            # those stay for errors only (a 500 with its traceback).
            "django.request": {"level": "ERROR"},
        },
    }


def gunicorn_logconfig(log_format: str) -> dict[str, Any]:
    """gunicorn's `logconfig_dict`: its error and access logs in the same format, on stderr
    and stdout as gunicorn's defaults have them. No level is set here: gunicorn's own
    `--log-level` (`loglevel`) keeps deciding what its error log says."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"structured": formatter_config(log_format, foreign=[gunicorn_access_fields])},
        "handlers": {
            "error_console": {
                "class": "logging.StreamHandler",
                "formatter": "structured",
                "stream": "ext://sys.stderr",
            },
            "console": {"class": "logging.StreamHandler", "formatter": "structured", "stream": "ext://sys.stdout"},
        },
        "root": {"handlers": ["error_console"], "level": "INFO"},
        "loggers": {
            "gunicorn.error": {"handlers": ["error_console"], "propagate": False},
            "gunicorn.access": {"handlers": ["console"], "propagate": False},
        },
    }
