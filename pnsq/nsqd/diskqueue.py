"""Disk queues: where a topic or channel keeps what its memory queue has no room for.

One ``DiskQueue`` per durable topic and channel, all served by one ``Disk`` task per nsqd.

Files (in ``--data-path``, named as NSQ names them, in pnsq's own format):
``<name>.diskqueue.000001.dat`` segments of at most ``--max-bytes-per-file`` bytes, and
``<name>.diskqueue.meta.dat``: ``depth\\nreadFile,readPos\\nwriteFile,writePos\\n``, written
atomically (temp file, fsync, rename). ``<name>`` is the topic, or ``<topic>:<channel>``.

Every record is ``MAGIC | payload length | crc32(payload) | payload`` where the payload is
``timestamp (ns) | deliver-at (wall clock ns, 0 = now) | attempts | id | body``. A damaged record
(bad magic, impossible length, wrong checksum, cut short) is skipped by scanning forward to the
next record whose checksum holds, and counted; every intact record around it is delivered and
no segment is ever thrown away. Deferred messages keep their time on disk.

The event loop never touches a file. ``put`` appends the encoded record to the queue's pending
bytes; the ``Disk`` task gathers, for every queue with work, the pending bytes, a read-ahead
request and any metadata, and does all of it in ONE worker-thread call (a "round"): writes,
then fsyncs, then reads, then metadata. Records are decoded back in the event loop. This is
trio's file API (file calls in worker threads) with the calls of a whole round batched into one
thread hop, so the cost per message is a few hundred nanoseconds whatever the disk does.

Reading does not forget: a record read from disk stays "unacknowledged" until the message is
finished (FIN), dropped by ``empty``, or written again (graceful shutdown). The read position
saved in the metadata is that of the oldest unacknowledged record, so a crash replays messages
that were in memory or in flight (duplicates, never losses). A segment file is deleted once
every record in it is acknowledged.

``--sync-every`` / ``--sync-timeout``: a "full sync" (fsync every file written since the last
one, then write every changed metadata file) happens after that many records written or read,
or after that long with unsynced activity. With ``--sync-every=1`` (durable mode) every round
also fsyncs the files it wrote, and publishers wait for the round that carries their records
(``ticket()``): one fsync covers every publish waiting at that moment, across connections.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import struct
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio

from .message import Message

if TYPE_CHECKING:
    from .options import Options

log = logging.getLogger("pnsq.nsqd")

MAGIC = b"\xa5NQ\x01"
_HEAD = struct.Struct(">4sII")  # magic, payload length, crc32 of the payload
_PAYLOAD = struct.Struct(">qqH16s")  # timestamp ns, deliver-at wall-clock ns, attempts, id
HEAD_SIZE = _HEAD.size
PAYLOAD_HEAD = _PAYLOAD.size
READ_CHUNK = 256 * 1024  # bytes read per queue per round
READ_AHEAD = 2000  # messages a consumer-side queue keeps decoded and ready
RETRY_AFTER = 1.0  # seconds between rounds while the disk fails
_os_write = os.write  # segment writes (tests replace it to inject a failing disk)


def encode_record(msg: Message, deliver_ns: int) -> bytes:
    payload = _PAYLOAD.pack(msg.timestamp, deliver_ns, msg.attempts, msg.id) + msg.body
    return _HEAD.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


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


def decode_payload(payload: bytes, now: float, wall_ns: int) -> Message:
    timestamp, deliver_ns, attempts, msg_id = _PAYLOAD.unpack_from(payload)
    deliver_at = now + (deliver_ns - wall_ns) / 1e9 if deliver_ns > wall_ns else 0.0
    msg = Message(msg_id, payload[PAYLOAD_HEAD:], timestamp, deliver_at)
    msg.attempts = attempts
    return msg


# -- one queue ------------------------------------------------------------------------------


class DiskQueue:
    """A topic's or channel's disk queue (``BackendQueue``); its I/O is done by ``Disk``.

    The owner gives two callbacks: ``on_read(messages)`` receives messages read back from disk
    (each carries ``origin``/``seq`` for ``ack``), and ``wants_read()`` says whether it has a
    use for more now. Owners keep read-back messages in ``ready``, counted in ``depth``.
    """

    def __init__(
        self,
        disk: Disk,
        name: str,
        on_read: Callable[[list[Message]], None],
        wants_read: Callable[[], bool],
    ) -> None:
        self.disk = disk
        self.name = name
        self.on_read = on_read
        self.wants_read = wants_read
        self.ready: deque[Message] = deque()
        self.corrupt_count = 0
        self.generation = 0  # bumped by empty(): results of an older round are dropped
        self.deleted = False
        self._prefix = os.path.join(disk.data_path, name + ".diskqueue")
        # Loop-side view. ``unread``: records written or pending, not yet read back.
        self.unread = 0
        self.wfile = 1
        self.wpos = 0  # logical end of the write segment, pending bytes included
        self.pending: list[_Chunk] = []
        self.rfile = 1
        self._reader = RecordReader(disk.max_payload)
        # Acknowledgements: record ``seq`` ends at ``_ends[seq - _first_seq]``.
        self._next_seq = 0
        self._first_seq = 0
        self._ends: deque[tuple[int, int]] = deque()
        self._acked: set[int] = set()
        self.acked = (1, 0)  # (file, pos) before which every record is acknowledged
        # Thread-side state: only the round in progress touches these.
        self.written = (1, 0)  # (file, pos) of the end of what has been written
        self._wfd: int | None = None
        self._wfd_file = 0
        self._rfd: int | None = None
        self._rfd_file = 0
        self.low_file = 1  # no segment below this exists
        self.unsynced = False
        self.meta_dirty = False
        self._recover()

    def _recover(self) -> None:
        """Pick up where a previous run left off: metadata, then what was written after it.

        Writing always resumes in a new segment, so every older segment is finished and its
        end is final (a torn record at its end is damage, skipped when read).
        """
        numbers = sorted(n for n in segment_numbers(self.disk.data_path, self.name) if n)
        meta = _read_meta(self.meta_path)
        if meta is None and not numbers:
            return
        if meta is None:
            depth, (rfile, rpos), (wfile, wpos) = 0, (numbers[0], 0), (numbers[0], 0)
        else:
            depth, (rfile, rpos), (wfile, wpos) = meta
        depth += sum(
            _count_records(self.segment_path(n), wpos if n == wfile else 0, self.disk.max_payload)
            for n in numbers
            if n >= wfile
        )
        last = max([*numbers, wfile])
        try:
            used = os.path.getsize(self.segment_path(last)) > 0
        except FileNotFoundError:
            used = False
        self.wfile = last + 1 if used else last
        self.written = (self.wfile, 0)
        self.unread = depth
        self.rfile = rfile
        self._reader = RecordReader(self.disk.max_payload, rpos)
        self.acked = (rfile, rpos)
        self.low_file = min([*numbers, rfile])

    @property
    def rpos(self) -> int:
        """Where reading stands in segment ``rfile`` (everything before it consumed)."""
        return self._reader.position

    # -- paths ----------------------------------------------------------------------------

    def segment_path(self, number: int) -> str:
        return f"{self._prefix}.{number:06d}.dat"

    @property
    def meta_path(self) -> str:
        return f"{self._prefix}.meta.dat"

    # -- BackendQueue ---------------------------------------------------------------------

    def put(self, msg: Message, now: float) -> bool:
        """Append ``msg``; False when the disk is failing (the caller refuses the publish)."""
        if not self.disk.healthy:
            return False
        deliver_ns = time.time_ns() + int((msg.deliver_at - now) * 1e9) if msg.deliver_at else 0
        record = encode_record(msg, deliver_ns)
        size = len(record)
        if self.wpos and self.wpos + size > self.disk.max_bytes_per_file:
            self.wfile += 1
            self.wpos = 0
        pending = self.pending
        if not pending or pending[-1].file != self.wfile:
            pending.append(_Chunk(self.wfile))
        pending[-1].data += record
        self.wpos += size
        self.unread += 1
        self.disk.mark(self)
        return True

    def writable(self) -> bool:
        return self.disk.healthy

    def depth(self) -> int:
        return self.unread + len(self.ready)

    def request_read(self) -> None:
        """The owner wants more messages (called when ``ready`` runs low)."""
        if self.unread:
            self.disk.mark(self)

    def peek(self, n: int) -> list[Message]:
        """Up to ``n`` messages not read back yet, from the files and the pending bytes.

        For the admin's peek: a small synchronous read (at most ``n`` records from where the
        reader stands), nothing changed.
        """
        reader = RecordReader(self.disk.max_payload)
        records: list[tuple[bytes, int]] = []
        file, pos = self.rfile, self._reader.position
        written_file = self.written[0]
        while len(records) < n and file <= written_file:
            try:
                with open(self.segment_path(file), "rb") as f:
                    f.seek(pos)
                    while len(records) < n and (data := f.read(READ_CHUNK)):
                        reader.feed(data)
                        records += reader.records()
            except FileNotFoundError:
                pass
            records += reader.finish()
            reader = RecordReader(self.disk.max_payload)
            file, pos = file + 1, 0
        for chunk in self.pending:
            if len(records) >= n:
                break
            reader.feed(chunk.data[chunk.done :])
            records += reader.records()
        now, wall_ns = trio.current_time(), time.time_ns()
        return [decode_payload(payload, now, wall_ns) for payload, _ in records[:n]]

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
        self._reader = RecordReader(self.disk.max_payload)
        self._first_seq = self._next_seq
        self._ends.clear()
        self._acked.clear()
        self.acked = (self.wfile, 0)
        self.meta_dirty = True
        self.disk.mark(self)

    def delete(self) -> None:
        self.empty()
        self.deleted = True
        self.disk.mark(self)

    # -- the loop side of a round ------------------------------------------------------------

    def _plan(self, full_sync: bool, durable: bool) -> _Work:
        work = _Work(self, self.generation, self.pending)
        self.pending = []
        work.fsync = bool(work.chunks) and durable
        if full_sync and (self.unsynced or work.chunks):
            work.fsync = True
        if not self.deleted and self.unread and self.wants_read():
            need = max(READ_CHUNK, self._reader.pending())
            work.read = (self.rfile, self._reader.read_to, need, self.wfile)
        if self.deleted:
            work.delete_all = True
        elif full_sync and (self.meta_dirty or work.fsync or work.chunks):
            work.meta = True
        work.delete_below = self.acked[0]
        return work

    def _apply(self, work: _Work, now: float, wall_ns: int) -> None:
        """Take a round's results: reads decoded and handed to the owner."""
        if work.error is not None:
            self.pending[:0] = [c for c in work.chunks if c.done < len(c.data)]
        if work.generation != self.generation or work.read_data is None:
            return
        reader = self._reader
        reader.feed(work.read_data)
        records = reader.records()
        if work.read_eof:  # a finished segment: nothing more will come
            records += reader.finish()
            self.rfile += 1
            self._reader = RecordReader(self.disk.max_payload)
        bad = reader.bad
        if bad:
            self.corrupt_count += bad
            self.disk.corrupt_count += bad
            reader.bad = 0
            log.error(
                "DISKQUEUE(%s): skipped %d damaged record(s) in %s",
                self.name,
                bad,
                self.segment_path(work.read[0] if work.read else self.rfile),
            )
        if records:
            messages = []
            seq = self._next_seq
            ends, rfile = self._ends, work.read[0] if work.read else self.rfile
            for payload, end in records:
                msg = decode_payload(payload, now, wall_ns)
                msg.origin = self
                msg.seq = seq
                seq += 1
                ends.append((rfile, end))
                messages.append(msg)
            self._next_seq = seq
            self.disk.ops += len(messages)
            self.unread = max(self.unread - len(messages), 0)
            self.meta_dirty = True
            self.on_read(messages)
        if not self._ends and (self.rfile, self.rpos) != self.acked:
            self.acked = (self.rfile, self.rpos)  # nothing read is outstanding
            self.meta_dirty = True
        if (
            not self.pending
            and (self.rfile, self.rpos) >= self.written
            and self.rfile >= self.wfile
        ):
            self.unread = 0  # caught up with the writer: whatever was counted is here

    # -- the thread side of a round (no event-loop state touched) ------------------------------

    def _write(self, chunk: _Chunk) -> None:
        if self._wfd is None or self._wfd_file != chunk.file:
            if self._wfd is not None:
                os.fsync(self._wfd)  # a finished segment is synced as it is left
                os.close(self._wfd)
                self._wfd = None
            self._wfd = os.open(
                self.segment_path(chunk.file), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644
            )
            self._wfd_file = chunk.file
            self.written = (chunk.file, os.fstat(self._wfd).st_size)
        data = memoryview(chunk.data)
        self.unsynced = True
        while chunk.done < len(data):
            n = _os_write(self._wfd, data[chunk.done :])
            chunk.done += n
            self.written = (chunk.file, self.written[1] + n)

    def _read(self, file: int, pos: int, size: int, last_file: int) -> tuple[bytes, bool]:
        """Up to ``size`` bytes at (file, pos); True if the segment is finished and all read."""
        if self._rfd is None or self._rfd_file != file:
            if self._rfd is not None:
                os.close(self._rfd)
                self._rfd = None
            try:
                self._rfd = os.open(self.segment_path(file), os.O_RDONLY)
            except FileNotFoundError:
                return b"", file < last_file
            self._rfd_file = file
        data = os.pread(self._rfd, size, pos)
        return data, len(data) < size and file < last_file

    def _sync(self) -> None:
        if self._wfd is not None:
            os.fsync(self._wfd)
        self.unsynced = False

    def _close_files(self) -> None:
        for fd in (self._wfd, self._rfd):
            if fd is not None:
                os.close(fd)
        self._wfd = self._rfd = None

    def _delete_segments(self, below: int) -> None:
        for number in range(self.low_file, below):
            if number == self._rfd_file and self._rfd is not None:
                os.close(self._rfd)
                self._rfd = None
            if number == self._wfd_file and self._wfd is not None:
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.segment_path(number))
        self.low_file = max(self.low_file, below)


@dataclass(slots=True)
class _Chunk:
    file: int
    data: bytearray = field(default_factory=bytearray)
    done: int = 0  # bytes of ``data`` written


@dataclass(slots=True)
class _Work:
    """What one round does for one queue, and what came of it."""

    queue: DiskQueue
    generation: int
    chunks: list[_Chunk]
    fsync: bool = False
    read: tuple[int, int, int, int] | None = None  # file, pos, size, last written file
    meta: bool = False
    meta_text: bytes = b""
    delete_below: int = 0
    delete_all: bool = False
    read_data: bytes | None = None
    read_eof: bool = False
    error: OSError | None = None


@dataclass(eq=False)
class Round:
    """A round of disk work; durable publishers wait on it."""

    done: trio.Event = field(default_factory=trio.Event)
    ok: bool = False


# -- the disk task -------------------------------------------------------------------------


class Disk:
    def __init__(self, options: Options, set_health: Callable[[str], None]) -> None:
        self.data_path = options.data_path or os.getcwd()
        self.max_bytes_per_file = options.max_bytes_per_file
        self.max_payload = PAYLOAD_HEAD + max(options.max_msg_size, 1)
        self.sync_every = options.sync_every
        self.sync_timeout = options.sync_timeout
        self.durable = options.sync_every == 1
        self.healthy = True
        self.corrupt_count = 0
        self.ops = 0  # records written or read since the last full sync
        self.metadata: Callable[[], bytes] | None = None  # nsqd.dat's contents
        self.metadata_dirty = False
        self._set_health = set_health
        self._marked: dict[int, DiskQueue] = {}
        self._queues: dict[int, DiskQueue] = {}
        self._wake = trio.Event()
        self._round = Round()
        self._wanted = False  # a durable publisher waits on the next round
        self._last_sync = -math.inf

    def register(self, queue: DiskQueue) -> None:
        self._queues[id(queue)] = queue

    def mark(self, queue: DiskQueue) -> None:
        """``queue`` has something for the next round."""
        self._marked[id(queue)] = queue
        self._wake.set()

    def persist_metadata(self) -> None:
        self.metadata_dirty = True
        self._wake.set()

    def ticket(self) -> Round:
        """The round that will carry what was put so far (durable publishers await it)."""
        self._wanted = True
        self._wake.set()
        return self._round

    # -- rounds ---------------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            busy = self._marked or self._wanted or self.metadata_dirty
            if not busy:
                unsynced = self.ops or any(
                    q.unsynced or q.meta_dirty for q in self._queues.values()
                )
                deadline = self._last_sync + self.sync_timeout if unsynced else math.inf
                with trio.move_on_at(deadline):
                    await self._wake.wait()
                self._wake = trio.Event()
            if not await self.round():
                await trio.sleep(RETRY_AFTER)

    async def round(self, *, full_sync: bool = False, closing: bool = False) -> bool:
        """Do every queue's pending work in one thread call; False if any of it failed."""
        now = trio.current_time()
        if not full_sync:
            if self.durable:
                full_sync = now >= self._last_sync + self.sync_timeout
            else:
                full_sync = (
                    self.ops >= self.sync_every or now >= self._last_sync + self.sync_timeout
                )
        current, self._round = self._round, Round()
        self._wanted = False
        queues = self._queues.values() if full_sync else self._marked.values()
        marked = list({id(q): q for q in [*queues, *self._marked.values()]}.values())
        self._marked = {}
        works = [q._plan(full_sync, self.durable) for q in marked]
        for work in works:
            if work.meta:
                work.meta_text = _meta_text(work.queue)
        metadata = None
        if self.metadata is not None and (self.metadata_dirty or closing):
            metadata = self.metadata()
            self.metadata_dirty = False
        with trio.CancelScope(shield=True):  # a round taken on is always finished
            error = await trio.to_thread.run_sync(_execute, works, metadata, self.data_path)
        now, wall_ns = trio.current_time(), time.time_ns()
        for work in works:
            queue = work.queue
            if work.error is not None:
                self._marked[id(queue)] = queue
            elif work.meta:
                queue.meta_dirty = False
            if work.delete_all:
                self._queues.pop(id(queue), None)
            else:
                queue._apply(work, now, wall_ns)
                if queue.unread and queue.wants_read():
                    self._marked.setdefault(id(queue), queue)
        errors = [w.error for w in works if w.error is not None]
        if error is not None:
            errors.append(error)
            self.metadata_dirty = True
        if errors:
            reason = errors[0].strerror or str(errors[0])
            if self.healthy:
                log.error("DISK: write failed - %s", reason)
            self.healthy = False
            self._set_health(f"NOK - {reason}")
        else:
            if not self.healthy:
                log.info("DISK: writes succeed again")
                self.healthy = True
                self._set_health("OK")
            if full_sync:
                self._last_sync = now
                self.ops = 0
        current.ok = not errors
        current.done.set()
        if self._marked:
            self._wake.set()
        return not errors

    async def close(self) -> None:
        """Write, sync and close everything (graceful shutdown)."""
        for _ in range(3):  # a failing disk gets a few tries
            if await self.round(full_sync=True, closing=True):
                break
        for queue in self._queues.values():
            queue._close_files()


def _meta_text(queue: DiskQueue) -> bytes:
    """depth (records from the acknowledged point on), read point, write point."""
    depth = queue.unread + len(queue._ends)
    rfile, rpos = queue.acked
    wfile, wpos = queue.wfile, queue.wpos
    return f"{depth}\n{rfile},{rpos}\n{wfile},{wpos}\n".encode()


def _execute(works: list[_Work], metadata: bytes | None, data_path: str) -> OSError | None:
    """The thread side of a round: writes, fsyncs, reads, metadata, deletions."""
    for work in works:
        queue = work.queue
        try:
            if work.delete_all:
                queue._close_files()
                _delete_queue_files(queue)
                continue
            for chunk in work.chunks:
                queue._write(chunk)
            if work.fsync:
                queue._sync()
        except OSError as err:
            work.error = err
    for work in works:
        queue = work.queue
        if work.error is not None or work.delete_all:
            continue
        try:
            if work.read is not None:
                file, pos, size, last_file = work.read
                work.read_data, work.read_eof = queue._read(file, pos, size, last_file)
            if work.meta:
                write_atomically(queue.meta_path, work.meta_text)
            if work.delete_below > queue.low_file:
                queue._delete_segments(work.delete_below)
        except OSError as err:
            work.error = err
    if metadata is not None:
        try:
            write_atomically(os.path.join(data_path, "nsqd.dat"), metadata)
        except OSError as err:
            return err
    return None


def _delete_queue_files(queue: DiskQueue) -> None:
    for number in segment_numbers(queue.disk.data_path, queue.name):
        path = queue.segment_path(number) if number else queue.meta_path
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


_FILE = re.compile(r"\.diskqueue\.(?:(\d{6})|meta)\.dat")


def segment_numbers(data_path: str, name: str) -> list[int]:
    """The numbers of the queue's segment files, and 0 for its metadata file if present."""
    matches = (_FILE.fullmatch(entry, len(name)) for entry in os.listdir(data_path))
    return [int(m[1]) if m[1] else 0 for m in matches if m and m.string.startswith(name)]


def _read_meta(path: str) -> tuple[int, tuple[int, int], tuple[int, int]] | None:
    try:
        with open(path, "rb") as f:
            depth, read, write = f.read().split(b"\n")[:3]
        rfile, rpos = map(int, read.split(b","))
        wfile, wpos = map(int, write.split(b","))
        return int(depth), (rfile, rpos), (wfile, wpos)
    except FileNotFoundError:
        return None
    except ValueError:
        log.error("DISKQUEUE: unreadable metadata %s - reading every segment", path)
        return None


def _count_records(path: str, start: int, max_payload: int) -> int:
    """Intact records in a segment from ``start`` on."""
    reader = RecordReader(max_payload, start)
    count = 0
    try:
        with open(path, "rb") as f:
            f.seek(start)
            while data := f.read(1 << 20):
                reader.feed(data)
                count += len(reader.records())
    except FileNotFoundError:
        return 0
    return count + len(reader.finish())


def write_atomically(path: str, data: bytes) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
