"""The disk queue's record: how one message is laid out in a segment file, and read back.

Pure bytes, no file and no clock of its own: the queue encodes as it takes a message, and
decodes what a disk round read. A record checks itself, so that a damaged stretch of a segment
costs the records in it and no more::

    [ magic: 4 ][ payload length: 4 ][ crc32 of the payload: 4 ][ payload ... ]
      a5 4e 51 01   big-endian          big-endian

    payload:
    [ timestamp ns: 8 ][ deliver-at, wall clock ns: 8 ][ attempts: 2 ][ id: 16 ][ body ... ]
      at publish         0 = deliver now

A damaged record (bad magic, impossible length, wrong checksum, cut short) is skipped by
scanning forward to the next record whose checksum holds, and counted once per stretch.
Deferred messages keep their wall-clock time on disk, so a restart defers them as long as
they still had to wait.

This is nsqd's own storage format, not a protocol anyone else speaks, so it lives with nsqd
rather than in ``pnsq.wire``.
"""

from __future__ import annotations

import struct
import zlib

from .message import Message

MAGIC = b"\xa5NQ\x01"
_HEAD = struct.Struct(">4sII")  # magic, payload length, crc32 of the payload
_PAYLOAD = struct.Struct(">qqH16s")  # timestamp ns, deliver-at wall-clock ns, attempts, id
HEAD_SIZE = _HEAD.size
PAYLOAD_HEAD = _PAYLOAD.size


def encode_record(msg: Message, deliver_ns: int) -> bytes:
    """``msg`` as one record; ``deliver_ns`` is its wall-clock delivery time (0 = now)."""
    payload = _PAYLOAD.pack(msg.timestamp, deliver_ns, msg.attempts, msg.id) + msg.body
    return _HEAD.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def decode_payload(payload: bytes, now: float, wall_ns: int) -> Message:
    """The message of a record's payload; a wall-clock deferral becomes one on ``now``'s clock."""
    timestamp, deliver_ns, attempts, msg_id = _PAYLOAD.unpack_from(payload)
    deliver_at = now + (deliver_ns - wall_ns) / 1e9 if deliver_ns > wall_ns else 0.0
    msg = Message(msg_id, payload[PAYLOAD_HEAD:], timestamp, deliver_at)
    msg.attempts = attempts
    return msg


class RecordReader:
    """Bytes of one segment in, intact records out; damaged stretches skipped and counted.

    ``feed(data)`` adds the next bytes; ``records()`` returns ``(payload, end position)`` for
    every complete intact record; ``finish()`` says no more bytes will come (end of a finished
    segment), so whatever is left is damaged. ``position`` is the file offset of the first
    byte not yet consumed; ``read_to`` that of the next byte to feed.
    """

    def __init__(self, max_payload: int, position: int = 0) -> None:
        self.max_payload = max_payload
        self.position = position
        self.bad = 0
        self._buf = bytearray()
        self._in_damage = False

    def feed(self, data: bytes | bytearray) -> None:
        self._buf += data

    @property
    def read_to(self) -> int:
        """The file offset of the next byte to feed."""
        return self.position + len(self._buf)

    def pending(self) -> int:
        """Bytes still needed to complete the record at the front (0 if unknown)."""
        buf = self._buf
        if len(buf) >= HEAD_SIZE and buf[:4] == MAGIC:
            length: int = _HEAD.unpack_from(buf)[1]
            if PAYLOAD_HEAD <= length <= self.max_payload:
                return HEAD_SIZE + length - len(buf)
        return 0

    def records(self, final: bool = False) -> list[tuple[bytes, int]]:
        buf, out = self._buf, []
        view = memoryview(buf)
        n, pos = len(buf), 0
        try:
            while n - pos >= HEAD_SIZE:
                magic, length, crc = _HEAD.unpack_from(buf, pos)
                if magic == MAGIC and PAYLOAD_HEAD <= length <= self.max_payload:
                    end = pos + HEAD_SIZE + length
                    if end > n and not final:
                        break  # the rest has not been read yet
                    if end <= n and zlib.crc32(view[pos + HEAD_SIZE : end]) == crc:
                        out.append((bytes(view[pos + HEAD_SIZE : end]), self.position + end))
                        pos = end
                        self._in_damage = False
                        continue
                pos = self._skip(buf, pos, n)
            if final and pos < n:
                self._damaged()
                pos = n
        finally:
            view.release()
        del buf[:pos]
        self.position += pos
        return out

    def finish(self) -> list[tuple[bytes, int]]:
        return self.records(final=True)

    def _skip(self, buf: bytearray, pos: int, n: int) -> int:
        self._damaged()
        nxt = buf.find(MAGIC, pos + 1)
        return nxt if nxt >= 0 else max(pos + 1, n - len(MAGIC) + 1)

    def _damaged(self) -> None:
        if not self._in_damage:
            self._in_damage = True
            self.bad += 1
