"""What a client's ``ClientConnection`` reports: one small class per kind of server frame.

``MessageEvent`` is a slotted class with a plain ``__init__`` so that a client can subclass it
(its ``Message``) and have deliveries built as its own objects in one allocation.
"""

from __future__ import annotations

from typing import Any, Final, TypeAlias, TypeVar

from .errors import ProtocolError


class MessageEvent:
    """A message frame: ``timestamp`` (ns since the epoch), ``attempts``, ``id`` (16 ASCII
    bytes) and ``body``."""

    __slots__ = ("attempts", "body", "id", "timestamp")

    def __init__(self, timestamp: int, attempts: int, msg_id: bytes, body: bytes) -> None:
        self.timestamp = timestamp
        self.attempts = attempts
        self.id = msg_id
        self.body = body

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MessageEvent):
            return NotImplemented
        return (self.timestamp, self.attempts, self.id, self.body) == (
            other.timestamp,
            other.attempts,
            other.id,
            other.body,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(timestamp={self.timestamp}, attempts={self.attempts}, "
            f"id={self.id!r}, body={self.body!r})"
        )


class Response:
    """A response frame other than a heartbeat: ``OK``, ``CLOSE_WAIT``, ..."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Response) and other.data == self.data

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Response({self.data!r})"


class ErrorFrame:
    """An error frame; ``error`` is the ProtocolError subclass for its code. After a fatal one
    nsqd closes the connection; E_FIN_FAILED, E_REQ_FAILED and E_TOUCH_FAILED are not fatal."""

    __slots__ = ("error",)

    def __init__(self, error: ProtocolError) -> None:
        self.error = error

    @property
    def fatal(self) -> bool:
        return self.error.fatal

    def __repr__(self) -> str:
        return f"ErrorFrame({self.error.to_bytes()!r})"


class Heartbeat:
    """nsqd's ``_heartbeat_``; the NOP that answers it is already in the outgoing bytes."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Heartbeat()"


class Negotiated:
    """IDENTIFY (and AUTH, when nsqd asked for it) are done; commands may follow.

    ``settings`` is nsqd's IDENTIFY reply ({} when it answered a plain OK), ``auth`` its AUTH
    reply (identity, identity_url, permission_count) or None when no AUTH was needed.
    """

    __slots__ = ("auth", "settings")

    def __init__(self, settings: dict[str, Any], auth: dict[str, Any] | None) -> None:
        self.settings = settings
        self.auth = auth

    def __repr__(self) -> str:
        return f"Negotiated({self.settings!r}, {self.auth!r})"


class UpgradeTLS:
    """nsqd agreed to TLS: do the client side of the handshake on the socket now, before any
    other byte is read or written, then feed what comes out of TLS (nsqd's ``OK`` first)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UpgradeTLS()"


class NeedData:
    """``next_event`` found no whole frame: send ``data_to_send()``, then feed more bytes."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = NeedData()

M = TypeVar("M", bound=MessageEvent)
Event: TypeAlias = Response | ErrorFrame | Heartbeat | Negotiated | UpgradeTLS | M
