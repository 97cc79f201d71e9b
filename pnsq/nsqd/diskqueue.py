"""A disk queue's bookkeeping: where a topic or channel keeps what its memory has no room for.

One ``DiskQueue`` per durable topic and channel; it is the ``BackendQueue`` its owner sees. It
keeps accounts only, and never touches a file or a clock itself: where writing and reading
stand, which records read back are not yet acknowledged, and what the next disk round should
do for it (``plan``), and it takes that round's results (``apply(work, now, wall_ns)``). The
files are ``disk_files``'s, worked in a worker thread; the rounds are run by ``disk.Disk``,
which this module knows only as the small ``DiskHost`` interface below.

Positions are ``(segment number, byte offset)``. ``put`` encodes the record at once and
appends it to the queue's pending bytes, so the cost per message is an encode and an append.

Reading does not forget: a record read from disk stays "unacknowledged" until the message is
finished (FIN), dropped by ``empty``, or written again (graceful shutdown). The read position
saved in the metadata is that of the oldest unacknowledged record, so a crash replays messages
that were in memory or in flight (duplicates, never losses). A segment file is deleted once
every record in it is acknowledged.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from .backend import OnRead
from .disk_record import RecordReader, decode_payload, encode_record
from .message import Message

READ_CHUNK = 256 * 1024  # bytes read per queue per round


class DiskHost(Protocol):
    """What a queue needs from the task that runs its disk rounds (``disk.Disk``)."""

    @property
    def healthy(self) -> bool:
        """False while the disk fails: the queue takes no message."""
        ...

    @property
    def durable(self) -> bool: ...

    @property
    def max_bytes_per_file(self) -> int: ...

    @property
    def max_payload(self) -> int: ...

    def mark(self, queue: DiskQueue) -> None:
        """``queue`` has work for the next round."""
        ...

    def read_stored(self, queue: DiskQueue, file: int, pos: int, n: int) -> list[bytes]:
        """Up to ``n`` record payloads from ``(file, pos)`` on, read now (the admin's peek)."""
        ...

    def now(self) -> float: ...

    def wall_ns(self) -> int: ...


@dataclass(frozen=True, slots=True)
class QueueStart:
    """Where a queue stands when it opens (``disk_files.SegmentFiles.recover``)."""

    depth: int = 0  # records from the read position on
    read: tuple[int, int] = (1, 0)  # the oldest record not acknowledged
    write_file: int = 1  # writing always resumes in a new segment


@dataclass(slots=True)
class Chunk:
    """Records for one segment, in the order they were put."""

    file: int
    data: bytearray = field(default_factory=bytearray)
    done: int = 0  # bytes of ``data`` written


@dataclass(slots=True)
class Work:
    """What one round does for one queue, and what came of it.

    ``DiskQueue.plan`` fills in the first part, ``disk_files.execute`` the results.
    """

    generation: int
    chunks: list[Chunk]
    fsync: bool = False
    read: tuple[int, int, int, int] | None = None  # file, pos, size, the file being written
    meta: bytes | None = None  # the metadata file's new contents
    delete_below: int = 0  # segments below this are acknowledged
    delete_all: bool = False
    # Results.
    read_data: bytes | None = None
    read_eof: bool = False  # the segment read is finished and read to its end
    written: tuple[int, int] = (1, 0)  # (file, pos) of the end of what has been written
    unsynced: bool = False  # written since the last fsync
    error: OSError | None = None


class DiskQueue:
    """A topic's or channel's disk queue (``BackendQueue``); its rounds run in ``DiskHost``.

    The owner gives two callbacks: ``on_read(messages)`` receives messages read back from disk
    (each carries ``origin``/``seq`` for ``ack``), and ``wants_read()`` says whether it has a
    use for more now. Owners keep read-back messages in ``ready``, counted in ``depth``.
    """

    def __init__(
        self,
        host: DiskHost,
        name: str,
        on_read: OnRead,
        wants_read: Callable[[], bool],
        start: QueueStart,
    ) -> None:
        self.name = name
        self.on_read = on_read
        self.wants_read = wants_read
        self.durable = host.durable
        self.ready: deque[Message] = deque()
        self.corrupt_count = 0
        self.generation = 0  # bumped by empty(): results of an older round are dropped
        self.deleted = False
        self._host = host
        self._max_bytes = host.max_bytes_per_file
        self._max_payload = host.max_payload
        # ``unread``: records written or pending, not yet read back.
        self.unread = start.depth
        self.wfile = start.write_file
        self.wpos = 0  # logical end of the write segment, pending bytes included
        self.pending: list[Chunk] = []
        self.rfile = start.read[0]
        self._reader = RecordReader(self._max_payload, start.read[1])
        # Acknowledgements: record ``seq`` ends at ``_ends[seq - _first_seq]``.
        self._next_seq = 0
        self._first_seq = 0
        self._ends: deque[tuple[int, int]] = deque()
        self._acked: set[int] = set()
        self.acked = start.read  # (file, pos) before which every record is acknowledged
        # As the last round left the files.
        self.written = (start.write_file, 0)
        self.unsynced = False
        self.meta_dirty = False

    @property
    def rpos(self) -> int:
        """Where reading stands in segment ``rfile`` (everything before it consumed)."""
        return self._reader.position

    # -- BackendQueue ---------------------------------------------------------------------

    def put(self, msg: Message, now: float) -> bool:
        """Append ``msg``; False when the disk is failing (the caller refuses the publish)."""
        host = self._host
        if not host.healthy:
            return False
        deliver_at = msg.deliver_at
        deliver_ns = host.wall_ns() + int((deliver_at - now) * 1e9) if deliver_at else 0
        record = encode_record(msg, deliver_ns)
        size = len(record)
        if self.wpos and self.wpos + size > self._max_bytes:
            self.wfile += 1
            self.wpos = 0
        pending = self.pending
        if not pending or pending[-1].file != self.wfile:
            pending.append(Chunk(self.wfile))
        pending[-1].data += record
        self.wpos += size
        self.unread += 1
        host.mark(self)
        return True

    def writable(self) -> bool:
        return self._host.healthy

    def depth(self) -> int:
        return self.unread + len(self.ready)

    def request_read(self) -> None:
        """The owner wants more messages (called when ``ready`` runs low)."""
        if self.unread:
            self._host.mark(self)

    def peek(self, n: int) -> list[Message]:
        """Up to ``n`` messages not read back yet, from the files and the pending bytes."""
        host = self._host
        payloads = host.read_stored(self, self.rfile, self.rpos, n)
        reader = RecordReader(self._max_payload)
        for chunk in self.pending:
            if len(payloads) >= n:
                break
            reader.feed(chunk.data[chunk.done :])
            payloads += [payload for payload, _ in reader.records()]
        now, wall_ns = host.now(), host.wall_ns()
        return [decode_payload(payload, now, wall_ns) for payload in payloads[:n]]

    def ack(self, seq: int) -> None:
        """The message read as ``seq`` is done with (finished, dropped or written again)."""
        first = self._first_seq
        if seq < first:
            return  # from before an empty()
        if seq != first:
            self._acked.add(seq)
            return
        ends, acked = self._ends, self._acked
        end = ends.popleft()
        first += 1
        while acked and first in acked:
            acked.discard(first)
            end = ends.popleft()
            first += 1
        self._first_seq = first
        if not ends:
            end = (self.rfile, self.rpos)  # nothing read is outstanding
        if end != self.acked:
            self.acked = end
            self.meta_dirty = True

    def empty(self) -> None:
        """Drop every message, on disk and read back (their later acks are ignored)."""
        self.generation += 1
        self.pending.clear()
        self.ready.clear()
        self.unread = 0
        self.wfile += 1
        self.wpos = 0
        self.rfile = self.wfile
        self._reader = RecordReader(self._max_payload)
        self._first_seq = self._next_seq
        self._ends.clear()
        self._acked.clear()
        self.acked = (self.wfile, 0)
        self.meta_dirty = True
        self._host.mark(self)

    def delete(self) -> None:
        self.empty()
        self.deleted = True
        self._host.mark(self)

    # -- rounds ---------------------------------------------------------------------------

    def wants_disk_read(self) -> bool:
        """Records wait on disk and the owner has room for them."""
        return bool(self.unread) and self.wants_read()

    def needs_sync(self) -> bool:
        """Something written or acknowledged is not yet synced to disk."""
        return self.unsynced or self.meta_dirty

    def plan(self, full_sync: bool, durable: bool) -> Work:
        """The next round's work: the pending bytes, a read-ahead, metadata, deletions."""
        work = Work(self.generation, self.pending)
        self.pending = []
        work.fsync = bool(work.chunks) and durable
        if full_sync and (self.unsynced or work.chunks):
            work.fsync = True
        if not self.deleted and self.wants_disk_read():
            need = max(READ_CHUNK, self._reader.pending())
            work.read = (self.rfile, self._reader.read_to, need, self.wfile)
        if self.deleted:
            work.delete_all = True
        elif full_sync and (self.meta_dirty or work.fsync or work.chunks):
            work.meta = self._meta_text()
        work.delete_below = self.acked[0]
        return work

    def _meta_text(self) -> bytes:
        """depth (records from the acknowledged point on), read point, write point."""
        depth = self.unread + len(self._ends)
        rfile, rpos = self.acked
        return f"{depth}\n{rfile},{rpos}\n{self.wfile},{self.wpos}\n".encode()

    def apply(self, work: Work, now: float, wall_ns: int) -> int:
        """Take a round's results; returns how many records it read back.

        Writes that failed are kept for the next round; records read are decoded and handed
        to the owner. Damaged records skipped are added to ``corrupt_count``.
        """
        self.written, self.unsynced = work.written, work.unsynced
        if work.error is not None:
            self.pending[:0] = [c for c in work.chunks if c.done < len(c.data)]
        elif work.meta is not None:
            self.meta_dirty = False
        if work.generation != self.generation or work.read_data is None:
            return 0
        rfile = work.read[0] if work.read else self.rfile
        records = self._take(work.read_data, work.read_eof)
        if records:
            self.on_read(self._number(records, rfile, now, wall_ns))
        if not self._ends and (self.rfile, self.rpos) != self.acked:
            self.acked = (self.rfile, self.rpos)  # nothing read is outstanding
            self.meta_dirty = True
        if (
            not self.pending
            and (self.rfile, self.rpos) >= self.written
            and self.rfile >= self.wfile
        ):
            self.unread = 0  # caught up with the writer: whatever was counted is here
        return len(records)

    def _take(self, data: bytes, eof: bool) -> list[tuple[bytes, int]]:
        """The intact records of bytes read from segment ``rfile``; damage counted."""
        reader = self._reader
        reader.feed(data)
        records = reader.records()
        if eof:  # a finished segment: nothing more will come
            records += reader.finish()
            self.rfile += 1
            self._reader = RecordReader(self._max_payload)
        self.corrupt_count += reader.bad
        reader.bad = 0
        return records

    def _number(
        self, records: list[tuple[bytes, int]], rfile: int, now: float, wall_ns: int
    ) -> list[Message]:
        """Decode records read back, each numbered for its ``ack``."""
        messages = []
        seq = self._next_seq
        ends = self._ends
        for payload, end in records:
            msg = decode_payload(payload, now, wall_ns)
            msg.origin = self
            msg.seq = seq
            seq += 1
            ends.append((rfile, end))
            messages.append(msg)
        self._next_seq = seq
        self.unread = max(self.unread - len(messages), 0)
        self.meta_dirty = True
        return messages
