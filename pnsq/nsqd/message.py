"""A message inside nsqd, and the IDs nsqd gives messages.

A message published and not yet delivered is one bytes object, ``Queued``: the data of the
message frame of its first delivery (attempts 1), so that delivery appends it whole::

    [x][x][x][x][x][x][x][x][x][x][x][x][x][x][x][x][x][x][x][x][x][x][x][x][x][x]...
    |       (int64)        ||    ||      (hex string encoded in ASCII)           || (binary)
    |       8-byte         ||    ||                 16-byte                      || N-byte
    ------------------------------------------------------------------------------------...
      nanosecond timestamp    ^^                   message ID                       message body
                           attempts (uint16) = 1

Every channel of the topic queues the same object, since attempts, in-flight state and
deferral do not exist before a delivery. Bytes are what Python builds cheapest (one
``b"".join`` each, ~45 ns) and keeps smallest (33 bytes of header, no separate ID object), and
the garbage collector never tracks them, so a backlog of millions costs the collector nothing:
a backlog of ``Message`` objects cost ~550 ns per message in collections alone.

A delivery turns the record into a ``Message`` (``Message.of``), owned by one channel: attempts,
the client holding it, its deadline, its deferral, the disk record it came from. Requeued,
deferred and read-back messages stay ``Message`` objects, so a queue holds both (``Item``).

This is the ground floor of nsqd: it imports nothing of nsqd, and names what a message is
held by (a client, a disk queue) only by the little it needs of them (``Holder``, ``Origin``).
"""

from __future__ import annotations

import struct
import time
from itertools import repeat
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
    """One channel's copy of a message once it has been delivered, deferred or read from disk.

    One made from a queued record keeps the record, which is its first delivery's frame data
    as it stands (``record``), and reads its body and timestamp out of it only if something
    asks (a redelivery, the disk, /peek, end-to-end latency).
    """

    __slots__ = (
        "_body",
        "_timestamp",
        "attempts",
        "bucket",
        "client",
        "deadline",
        "deliver_at",
        "delivered_at",
        "id",
        "origin",
        "record",
        "seq",
    )

    def __init__(self, msg_id: bytes, body: bytes, timestamp: int, deliver_at: float = 0.0) -> None:
        self.id = msg_id
        self._body: bytes | None = body
        self._timestamp: int | None = timestamp  # ns since the epoch, at publish
        self.record: Queued | None = None
        self.attempts = 0
        self.deliver_at = deliver_at  # trio clock time before which it is deferred; 0 = now
        self.client: Holder | None = None  # owner while in flight
        self.deadline = 0.0  # in-flight timeout (trio clock)
        self.delivered_at = 0.0
        self.bucket = 0.0  # the in-flight timeout it was filed under
        self.origin: Origin | None = None  # read back from this disk queue, not yet acked
        self.seq = 0  # its number there (``origin.ack(seq)``)

    @property
    def body(self) -> bytes:
        body = self._body
        if body is None:
            assert self.record is not None
            body = self._body = self.record[QUEUED_HEAD.size :]
        return body

    @property
    def timestamp(self) -> int:
        timestamp = self._timestamp
        if timestamp is None:
            assert self.record is not None
            timestamp = self._timestamp = QUEUED_HEAD.unpack_from(self.record)[0]
        return timestamp

    def done(self) -> None:
        """Finished, dropped or stored again: its disk record (if any) may go."""
        if self.origin is not None:
            self.origin.ack(self.seq)
            self.origin = None

    def copy(self) -> Message:
        return Message(self.id, self.body, self.timestamp, self.deliver_at)

    @staticmethod
    def of(item: Item) -> Message:
        """``item`` as a ``Message`` (a new one, not yet delivered, for a queued record)."""
        if isinstance(item, Message):
            return item
        msg = _new(Message)
        msg.record = item
        msg.id = item[_ID_START:_ID_END]
        msg._body = msg._timestamp = None
        msg.attempts = 0
        msg.deliver_at = msg.deadline = msg.delivered_at = msg.bucket = 0.0
        msg.client = msg.origin = None
        msg.seq = 0
        return msg


Queued = bytes  # a published message never delivered, laid out as the module docstring shows
Item = Message | Queued  # what a topic's or channel's memory queue holds
QUEUED_HEAD = struct.Struct(">qH16s")  # timestamp, attempts (1: its first delivery), ID
_STAMP = struct.Struct(">qH")  # what a publish's records share: timestamp, attempts
_ID_START, _ID_END = _STAMP.size, QUEUED_HEAD.size
_new = object.__new__


def queue_records(ids: list[bytes], bodies: list[bytes], timestamp: int) -> list[Queued]:
    """The ``Queued`` records of a publish: one join per message."""
    head = _STAMP.pack(timestamp, 1)
    return list(map(b"".join, zip(repeat(head), ids, bodies)))


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
