"""The client's errors: a small hierarchy a caller can catch at the level it cares about.

NSQError
├── NSQConnectionError   could not connect, or the connection broke / went silent
├── NSQProtocolError     the server sent something that is not NSQ
└── ServerError          nsqd answered with an error frame (``code``, ``description``)
    └── PublishError     a PUB/MPUB/DPUB (TCP or HTTP) was refused
"""

from __future__ import annotations


class NSQError(Exception):
    """Base class of every error the client raises."""


class NSQConnectionError(NSQError, ConnectionError):
    """Connecting failed, or the connection closed or timed out before an answer came."""


class NSQProtocolError(NSQError):
    """The peer's bytes are not NSQ's protocol (a bad frame, an unexpected reply)."""


class ServerError(NSQError):
    """nsqd answered with an error: ``code`` is NSQ's (``E_BAD_TOPIC``, HTTP ``INVALID_TOPIC``)."""

    def __init__(self, code: str, description: str = "") -> None:
        super().__init__(f"{code} {description}".strip())
        self.code = code
        self.description = description


class PublishError(ServerError):
    """nsqd refused a publish; nothing of it was queued."""
