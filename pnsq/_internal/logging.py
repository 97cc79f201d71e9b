"""Log lines shaped like NSQ's, on the stdlib logging root.

NSQ writes ``<prefix><date> <time.micros> <LEVEL>: <message>`` to stderr, e.g.
``[nsqd] 2026/11/25 10:00:00.123456 INFO: TCP: listening on [::]:4150``. Log shippers and
people grep for that shape, so pnsq keeps it. Only the root logger is configured: library
modules log through ``logging.getLogger(__name__)`` and stay unaware of the format.

``--log-format=json`` swaps the formatter for one JSON object per line (time in UTC, NSQ's level
name, the component, the message, the ``extra=`` fields, the traceback) for log shippers that
would otherwise have to parse the text shape; the stdlib records are the same either way.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import TextIO

__all__ = [
    "LOG_FORMATS",
    "LOG_LEVELS",
    "JsonFormatter",
    "parse_log_format",
    "parse_log_level",
    "setup_logging",
]

# NSQ's level names (what --log-level accepts) -> stdlib levels.
LOG_LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
}
LOG_FORMATS = ("text", "json")
# How NSQ prints each level.
_LEVEL_LABELS = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "FATAL",
}


def parse_log_level(text: str) -> str:
    """Canonical NSQ level name for ``text`` (case-insensitive); ValueError if unknown."""
    level = text.strip().lower()
    if level not in LOG_LEVELS:
        raise ValueError(f"invalid log level '{text}' (debug, info, warn, error, fatal)")
    return level


class NsqFormatter(logging.Formatter):
    """``<prefix>YYYY/MM/DD HH:MM:SS.micros LEVEL: message`` in local time, like Go's log."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created).strftime("%Y/%m/%d %H:%M:%S.%f")
        label = _LEVEL_LABELS.get(record.levelno, record.levelname)
        line = f"{self.prefix}{stamp} {label}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


# Attributes every LogRecord has; whatever else a record carries came from ``extra=``.
_RECORD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_COMPONENTS = ("nsqd", "lookupd", "admin", "authd")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (RFC 3339, UTC, microseconds), level, component, message,
    fields (the ``extra=`` values) and, when the record has one, exc (the traceback text).

    ``component`` comes from the logger (``pnsq.nsqd.broker`` -> ``nsqd``); records from other
    loggers (hypercorn, trio) get the process's own component.
    """

    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        parts = record.name.split(".")
        component = self.component
        if len(parts) > 1 and parts[0] == "pnsq" and parts[1] in _COMPONENTS:
            component = parts[1]
        fields = {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRS}
        document: dict[str, object] = {
            "time": stamp,
            "level": _LEVEL_LABELS.get(record.levelno, record.levelname),
            "component": component,
            "message": record.getMessage(),
            "fields": fields,
        }
        if record.exc_info:
            document["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            document["exc"] = record.exc_text
        # default=str: an extra value json cannot encode (an address tuple is fine, a socket
        # is not) is logged as its text rather than losing the whole line
        return json.dumps(document, default=str, ensure_ascii=False)


class _NsqHandler(logging.StreamHandler[TextIO]):
    """Marks the handler setup_logging installed, so a second call replaces it."""


def parse_log_format(text: str) -> str:
    """``text`` or ``json`` (case-insensitive); ValueError naming the choices otherwise."""
    fmt = text.strip().lower()
    if fmt not in LOG_FORMATS:
        raise ValueError(f"invalid log format '{text}' (text, json)")
    return fmt


def setup_logging(
    level: str,
    prefix: str,
    stream: TextIO | None = None,
    *,
    log_format: str = "text",
    component: str = "",
) -> None:
    """Send root logging to ``stream`` (stderr) at NSQ level ``level``: NSQ's text lines with
    ``prefix``, or JSON lines naming ``component`` (the prefix is then unused).

    Calling it again (e.g. after ``PUT /config/log_level``) replaces the previous setup.
    """
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _NsqHandler)]:
        root.removeHandler(handler)
    handler = _NsqHandler(sys.stderr if stream is None else stream)
    if parse_log_format(log_format) == "json":
        handler.setFormatter(JsonFormatter(component or prefix.strip(" []")))
    else:
        handler.setFormatter(NsqFormatter(prefix))
    root.addHandler(handler)
    root.setLevel(LOG_LEVELS[parse_log_level(level)])
