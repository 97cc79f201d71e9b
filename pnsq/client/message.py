"""A message as a handler sees it, and how it answers nsqd.

``finish``, ``requeue`` and ``touch`` are plain methods: they queue a command on the connection's
write buffer (sent with the others of the same batch). Called from a worker thread (a plain
``def`` handler), they hop to the event loop first.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import anyio.from_thread

from pnsq.wire import encode_touch

from .codecs import Codec

if TYPE_CHECKING:
    from ._conn import Connection

# outcomes reported to the connection's delegate
FINISHED, REQUEUED, REQUEUED_NO_BACKOFF = 0, 1, 2


class Message:
    """One delivery of an NSQ message.

    ``body`` is the raw bytes, ``data`` the body decoded with the consumer's codec, ``id`` the
    16-byte ASCII id, ``attempts`` how many times nsqd has delivered it (1 the first time),
    ``timestamp`` the publish time in nanoseconds since the epoch.
    """

    __slots__ = (
        "_conn",
        "_data",
        "attempts",
        "auto_response",
        "body",
        "codec",
        "id",
        "responded",
        "timestamp",
    )

    def __init__(
        self, conn: Connection, timestamp: int, attempts: int, msg_id: bytes, body: bytes
    ) -> None:
        self._conn = conn
        self.timestamp = timestamp
        self.attempts = attempts
        self.id = msg_id
        self.body = body
        self.codec: Codec = conn.codec
        self.responded = False
        self.auto_response = True
        self._data: Any = _UNSET

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
            anyio.from_thread.run_sync(self._conn.write, encode_touch(self.id))
        else:
            self._conn.write(encode_touch(self.id))

    def _respond(self, outcome: int, delay_ms: int) -> None:
        if self.responded:
            return
        self.responded = True
        if threading.get_ident() != self._conn.loop_thread:
            anyio.from_thread.run_sync(self._conn.message_done, self, outcome, delay_ms)
        else:
            self._conn.message_done(self, outcome, delay_ms)


_UNSET: Any = object()
