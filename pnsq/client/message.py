"""A message as a handler sees it, and how it answers nsqd.

``Message`` is the wire core's ``MessageEvent`` with the client's behaviour added, so the
connection's state machine builds each delivery as a ``Message`` directly (one object per message).
It knows its connection only through ``MessageOwner``, so this module sits below ``_conn.py``.

``finish``, ``requeue`` and ``touch`` are plain methods: they queue a command on the connection's
write buffer (sent with the others of the same batch). Called from a worker thread (a plain
``def`` handler), they hop to the event loop first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

import anyio.from_thread

from pnsq.wire import MessageEvent

from .codecs import RAW, Codec

# outcomes reported to the connection's delegate
FINISHED, REQUEUED, REQUEUED_NO_BACKOFF = 0, 1, 2


class MessageOwner(Protocol):
    """What a message needs of the connection that delivered it."""

    address_text: str
    loop_thread: int
    closed: bool
    msg_timeout: float
    default_requeue_delay: Callable[[int], float]

    def message_done(self, message: Message, outcome: int, delay_ms: int) -> None: ...

    def touch(self, msg_id: bytes) -> None: ...


class Message(MessageEvent):
    """One delivery of an NSQ message.

    ``body`` is the raw bytes, ``data`` the body decoded with the consumer's codec, ``id`` the
    16-byte ASCII id, ``attempts`` how many times nsqd has delivered it (1 the first time),
    ``timestamp`` the publish time in nanoseconds since the epoch.
    """

    __slots__ = ("_conn", "_data", "auto_response", "codec", "responded")

    _conn: MessageOwner  # set by the connection right after the frame is parsed

    def __init__(self, timestamp: int, attempts: int, msg_id: bytes, body: bytes) -> None:
        # MessageEvent's fields set here rather than through super(): one call less per message
        self.timestamp = timestamp
        self.attempts = attempts
        self.id = msg_id
        self.body = body
        self.codec: Codec = RAW
        self.responded = False
        self.auto_response = True
        self._data: Any = _UNSET

    # a delivery is itself, not its contents (MessageEvent compares by value)
    __eq__ = object.__eq__
    __hash__ = object.__hash__  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Message id={self.id.decode()} attempts={self.attempts} {len(self.body)} B>"

    @property
    def data(self) -> Any:
        """The body decoded with ``codec`` (decoded once, on first use)."""
        if self._data is _UNSET:
            self._data = self.codec.decode(self.body)
        return self._data

    @property
    def address(self) -> str:
        """``host:port`` of the nsqd that delivered the message."""
        return self._conn.address_text

    def disable_auto_response(self) -> None:
        """The handler answers later: returning (or raising) no longer FINs (or REQs) it.

        go-nsq's ``DisableAutoResponse``: for handlers that hand the message on (a batch written
        and fsynced, a publish elsewhere acknowledged) and call ``finish`` or ``requeue`` then.
        Until then the message counts as in flight; ``touch`` keeps nsqd from timing it out.
        """
        self.auto_response = False

    def finish(self) -> None:
        """Tell nsqd the message is done (FIN). Later calls do nothing."""
        self._respond(FINISHED, 0)

    def requeue(self, delay: float | None = None, *, backoff: bool = True) -> None:
        """Give the message back for redelivery after ``delay`` seconds (REQ).

        Without ``delay`` the consumer's default applies (``requeue_delay`` x attempts, capped).
        ``backoff=False`` requeues without slowing the consumer down.
        """
        delay_s = self._conn.default_requeue_delay(self.attempts) if delay is None else delay
        self._respond(REQUEUED if backoff else REQUEUED_NO_BACKOFF, max(0, int(delay_s * 1000)))

    def touch(self) -> None:
        """Reset the message's timeout on nsqd (TOUCH) while a handler still works on it."""
        if self.responded:
            return
        if threading.get_ident() != self._conn.loop_thread:
            anyio.from_thread.run_sync(self._conn.touch, self.id)
        else:
            self._conn.touch(self.id)

    def _respond(self, outcome: int, delay_ms: int) -> None:
        if self.responded:
            return
        self.responded = True
        if threading.get_ident() != self._conn.loop_thread:
            anyio.from_thread.run_sync(self._conn.message_done, self, outcome, delay_ms)
        else:
            self._conn.message_done(self, outcome, delay_ms)


_UNSET: Any = object()
