"""Log lines shaped like NSQ's, on the stdlib logging root.

NSQ writes ``<prefix><date> <time.micros> <LEVEL>: <message>`` to stderr, e.g.
``[nsqd] 2026/11/25 10:00:00.123456 INFO: TCP: listening on [::]:4150``. Log shippers and
people grep for that shape, so pnsq keeps it. Only the root logger is configured: library
modules log through ``logging.getLogger(__name__)`` and stay unaware of the format.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from typing import TextIO

__all__ = ["LOG_LEVELS", "parse_log_level", "setup_logging"]

# NSQ's level names (what --log-level accepts) -> stdlib levels.
LOG_LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
}
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


class _NsqHandler(logging.StreamHandler[TextIO]):
    """Marks the handler setup_logging installed, so a second call replaces it."""


def setup_logging(level: str, prefix: str, stream: TextIO | None = None) -> None:
    """Send root logging to ``stream`` (stderr) in NSQ's format at NSQ level ``level``.

    Calling it again (e.g. after ``PUT /config/log_level``) replaces the previous setup.
    """
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _NsqHandler)]:
        root.removeHandler(handler)
    handler = _NsqHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(NsqFormatter(prefix))
    root.addHandler(handler)
    root.setLevel(LOG_LEVELS[parse_log_level(level)])
