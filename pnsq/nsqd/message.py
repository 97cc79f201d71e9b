"""A message inside nsqd, and the IDs nsqd gives messages.

Each channel holds its own ``Message`` object per message (attempts, in-flight state and
deferral are per channel) sharing the ID, body and publish timestamp. ``__slots__`` keeps the
per-message cost near 200 ns; the hot paths set attributes directly.

This is the ground floor of nsqd: it imports nothing of nsqd, and names what a message is
held by (a client, a disk queue) only by the little it needs of them (``Holder``, ``Origin``).
"""

from __future__ import annotations

import time
from binascii import hexlify
from typing import Protocol

# NSQ's epoch for message IDs: 2010-11-04 (ms >> 20 units of ns), as in its guid.go.
_TWEPOCH = 1288834974288


class Holder(Protocol):
    """The client a message is in flight to (``ClientV2``)."""

    in_flight_count: int


class Origin(Protocol):
    """The disk queue a message was read back from (``DiskQueue``)."""

    def ack(self, seq: int) -> None: ...


class Message:
    __slots__ = (
        "attempts",
        "body",
        "bucket",
        "client",
        "deadline",
        "deliver_at",
        "delivered_at",
        "id",
        "origin",
        "seq",
        "timestamp",
    )

    def __init__(self, msg_id: bytes, body: bytes, timestamp: int, deliver_at: float = 0.0) -> None:
        self.id = msg_id
        self.body = body
        self.timestamp = timestamp  # ns since the epoch, at publish
        self.attempts = 0
        self.deliver_at = deliver_at  # trio clock time before which it is deferred; 0 = now
        self.client: Holder | None = None  # owner while in flight
        self.deadline = 0.0  # in-flight timeout (trio clock)
        self.delivered_at = 0.0
        self.bucket = 0.0  # the in-flight timeout it was filed under
        self.origin: Origin | None = None  # read back from this disk queue, not yet acked
        self.seq = 0  # its number there (``origin.ack(seq)``)

    def done(self) -> None:
        """Finished, dropped or stored again: its disk record (if any) may go."""
        if self.origin is not None:
            self.origin.ack(self.seq)
            self.origin = None

    def copy(self) -> Message:
        return Message(self.id, self.body, self.timestamp, self.deliver_at)


class IdFactory:
    """Unique, increasing 16-hex-character IDs shaped like NSQ's.

    NSQ packs (ms since its epoch) << 22 | node_id << 12 | a per-ms sequence. We take the same
    value from the clock once per batch and never go below the last ID given, so IDs stay unique
    within the process however fast messages arrive, and stay ahead of earlier runs' IDs.
    """

    def __init__(self, node_id: int) -> None:
        self._node = (node_id & 0x3FF) << 12
        self._last = 0

    def take(self, n: int) -> list[bytes]:
        start = max(self._last + 1, ((time.time_ns() >> 20) - _TWEPOCH) << 22 | self._node)
        self._last = start + n - 1
        return [hexlify(i.to_bytes(8, "big")) for i in range(start, start + n)]
