"""The client's errors: a small hierarchy a caller can catch at the level it cares about.

NSQError
├── NSQConnectionError   could not connect, or the connection broke / went silent
├── NSQProtocolError     the server sent something that is not NSQ
└── ServerError          nsqd answered with an error frame (``code``, ``description``)
    ├── PublishError     a PUB/MPUB/DPUB (TCP or HTTP) was refused
    └── AuthError        AUTH was refused, or an authorization does not allow the command
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


class AuthError(ServerError):
    """NSQ's E_AUTH_FAILED, E_AUTH_FIRST, E_UNAUTHORIZED, E_AUTH_DISABLED or E_AUTH_ERROR: the
    secret was refused (or none was set), or its authorizations do not cover the command."""


AUTH_CODES = frozenset(
    {"E_AUTH_FAILED", "E_AUTH_FIRST", "E_UNAUTHORIZED", "E_AUTH_DISABLED", "E_AUTH_ERROR"}
)


def server_error(code: str, description: str = "") -> ServerError:
    """The ServerError subclass for an nsqd error code."""
    return (AuthError if code in AUTH_CODES else ServerError)(code, description)
