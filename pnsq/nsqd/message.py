"""A message inside nsqd, and the IDs nsqd gives messages.

A message published and not yet delivered is a plain tuple, ``Queued`` = (id, body, publish
timestamp): every channel of the topic queues the same tuple, since attempts, in-flight state
and deferral do not exist before a delivery. Tuples are the cheapest object Python builds
(~50 ns), and the garbage collector stops tracking a tuple of bytes and ints the first time it
sees one, so a backlog of millions costs the collector nothing; a backlog of ``Message``
objects cost ~550 ns per message in collections alone. A tuple holds 3 pointers in 64 bytes.

A delivery turns the tuple into a ``Message`` (``Message.of``), owned by one channel: attempts,
the client holding it, its deadline, its deferral, the disk record it came from. Requeued,
deferred and read-back messages stay ``Message`` objects, so a queue holds both (``Item``).

This is the ground floor of nsqd: it imports nothing of nsqd, and names what a message is
held by (a client, a disk queue) only by the little it needs of them (``Holder``, ``Origin``).
"""

from __future__ import annotations

import time
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
    """One channel's copy of a message once it has been delivered, deferred or read from disk."""

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

    @staticmethod
    def of(item: Item) -> Message:
        """``item`` as a ``Message`` (a new one for a queued tuple)."""
        return item if isinstance(item, Message) else Message(*item)


Queued = tuple[bytes, bytes, int]  # (id, body, timestamp): published, never delivered
Item = Message | Queued  # what a topic's or channel's memory queue holds


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
        stop = start + n
        self._last = stop - 1
        if n == 1:
            return [b"%016x" % start]
        # IDs in one 4096-block share their first 13 hex digits: one prefix, joined to
        # precomputed 3-digit tails (~30 ns an ID against ~70 for hexlify of each).
        ids: list[bytes] = []
        while start < stop:
            low = start & 0xFFF
            block = min(stop - start, 0x1000 - low)
            ids += map((b"%013x" % (start >> 12)).__add__, _TAILS[low : low + block])
            start += block
        return ids


_TAILS = [b"%03x" % i for i in range(0x1000)]
