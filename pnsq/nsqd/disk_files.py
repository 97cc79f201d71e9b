"""A disk queue's files, and the one worker-thread call that does a whole disk round.

Files (in ``--data-path``, named as NSQ names them, in pnsq's own format, see ``disk_record``):
``<name>.diskqueue.000001.dat`` segments of at most ``--max-bytes-per-file`` bytes, and
``<name>.diskqueue.meta.dat``: ``depth\\nreadFile,readPos\\nwriteFile,writePos\\n``, written
atomically (temp file, fsync, rename). ``<name>`` is the topic, or ``<topic>:<channel>``.

A round's file I/O runs in a worker thread: ``execute`` does every queue's planned ``Work``
(``diskqueue.Work``) in one go, writes, then fsyncs, then reads, then metadata and deletions.
The exception is durable publishing's usual round, appends to segments already open and
their fsync: the event loop writes them (``write``, a few KiB into the page cache) and the
committer thread fsyncs (``disk_commit``), which keeps a publish's round trip short. A
``SegmentFiles`` is changed only by the round in progress (and by ``recover`` when its queue
opens); the admin's ``peek`` only reads.
Each fsync is timed into the round's ``fsync_times`` (the event loop folds them into
/metrics' ``nsq_disk_fsync_seconds`` once the round is back: no lock, one number per fsync).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time

from .disk_record import RecordReader
from .diskqueue import Chunk, QueueStart, Work

log = logging.getLogger("pnsq.nsqd")

PEEK_CHUNK = 256 * 1024
_os_write = os.write  # segment writes (tests replace it to inject a failing disk)


class SegmentFiles:
    """One queue's segment and metadata files, and the descriptors open on them."""

    def __init__(self, data_path: str, name: str) -> None:
        self.data_path = data_path
        self.name = name
        self._prefix = os.path.join(data_path, name + ".diskqueue")
        self.written = (1, 0)  # (file, pos) of the end of what has been written
        self.low_file = 1  # no segment below this exists
        self.unsynced = False
        self._wfd: int | None = None
        self._wfd_file = 0
        self._rfd: int | None = None
        self._rfd_file = 0

    def segment_path(self, number: int) -> str:
        return f"{self._prefix}.{number:06d}.dat"

    @property
    def meta_path(self) -> str:
        return f"{self._prefix}.meta.dat"

    def recover(self, max_payload: int) -> QueueStart:
        """Pick up where a previous run left off: metadata, then what was written after it.

        Writing always resumes in a new segment, so every older segment is finished and its
        end is final (a torn record at its end is damage, skipped when read).
        """
        numbers = sorted(n for n in segment_numbers(self.data_path, self.name) if n)
        meta = _read_meta(self.meta_path)
        if meta is None and not numbers:
            return QueueStart()
        if meta is None:
            depth, (rfile, rpos), (wfile, wpos) = 0, (numbers[0], 0), (numbers[0], 0)
        else:
            depth, (rfile, rpos), (wfile, wpos) = meta
        depth += sum(
            _count_records(self.segment_path(n), wpos if n == wfile else 0, max_payload)
            for n in numbers
            if n >= wfile
        )
        last = max([*numbers, wfile])
        try:
            used = os.path.getsize(self.segment_path(last)) > 0
        except FileNotFoundError:
            used = False
        write_file = last + 1 if used else last
        self.written = (write_file, 0)
        self.low_file = min([*numbers, rfile])
        return QueueStart(depth, (rfile, rpos), write_file)

    def peek(self, file: int, pos: int, n: int, max_payload: int) -> list[bytes]:
        """Up to ``n`` record payloads from ``(file, pos)`` to the end of what is written.

        A small synchronous read for the admin's peek; nothing changed.
        """
        records: list[tuple[bytes, int]] = []
        written_file = self.written[0]
        while len(records) < n and file <= written_file:
            reader = RecordReader(max_payload)
            try:
                with open(self.segment_path(file), "rb") as f:
                    f.seek(pos)
                    while len(records) < n and (data := f.read(PEEK_CHUNK)):
                        reader.feed(data)
                        records += reader.records()
            except FileNotFoundError:
                pass
            records += reader.finish()
            file, pos = file + 1, 0
        return [payload for payload, _ in records]

    # -- the thread side of a round ---------------------------------------------------------

    def write(self, chunk: Chunk, fsync_times: list[float]) -> None:
        if self._wfd is None or self._wfd_file != chunk.file:
            if self._wfd is not None:
                timed_fsync(self._wfd, fsync_times)  # a finished segment is synced as it is left
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

    def append_fd(self, chunks: list[Chunk]) -> int | None:
        """The open descriptor every chunk goes to; None if one needs a segment opened."""
        fd = self._wfd
        if fd is None or any(chunk.file != self._wfd_file for chunk in chunks):
            return None
        return fd

    def read(self, file: int, pos: int, size: int, last_file: int) -> tuple[bytes, bool]:
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

    def sync(self, fsync_times: list[float]) -> None:
        if self._wfd is not None:
            timed_fsync(self._wfd, fsync_times)
        self.unsynced = False

    def close(self) -> None:
        for fd in (self._wfd, self._rfd):
            if fd is not None:
                os.close(fd)
        self._wfd = self._rfd = None

    def delete_below(self, below: int) -> None:
        """Delete the segments before ``below`` (every record in them is acknowledged)."""
        for number in range(self.low_file, below):
            if number == self._rfd_file and self._rfd is not None:
                os.close(self._rfd)
                self._rfd = None
            if number == self._wfd_file and self._wfd is not None:
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.segment_path(number))
        self.low_file = max(self.low_file, below)

    def delete_all(self) -> None:
        self.close()
        for number in segment_numbers(self.data_path, self.name):
            path = self.segment_path(number) if number else self.meta_path
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def execute(
    jobs: list[tuple[SegmentFiles, Work]],
    metadata: bytes | None,
    data_path: str,
    fsync_times: list[float],
) -> OSError | None:
    """A whole round, in a worker thread: writes, fsyncs, reads, metadata, deletions.

    Each queue's failure is kept in its ``Work``; the return value is nsqd.dat's. The duration
    of every fsync is appended to ``fsync_times``.
    """
    for files, work in jobs:
        try:
            if work.delete_all:
                files.delete_all()
                continue
            for chunk in work.chunks:
                files.write(chunk, fsync_times)
            if work.fsync:
                files.sync(fsync_times)
        except OSError as err:
            work.error = err
    for files, work in jobs:
        if work.error is None and not work.delete_all:
            try:
                _read_and_tidy(files, work, fsync_times)
            except OSError as err:
                work.error = err
        work.written, work.unsynced = files.written, files.unsynced
    if metadata is not None:
        try:
            write_atomically(os.path.join(data_path, "nsqd.dat"), metadata, fsync_times)
        except OSError as err:
            return err
    return None


def _read_and_tidy(files: SegmentFiles, work: Work, fsync_times: list[float]) -> None:
    if work.read is not None:
        work.read_data, work.read_eof = files.read(*work.read)
    if work.meta is not None:
        write_atomically(files.meta_path, work.meta, fsync_times)
    if work.delete_below > files.low_file:
        files.delete_below(work.delete_below)


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


def timed_fsync(fd: int, fsync_times: list[float]) -> None:
    """``os.fsync``, its duration (seconds) appended to ``fsync_times`` even when it fails."""
    start = time.perf_counter()
    try:
        os.fsync(fd)
    finally:
        fsync_times.append(time.perf_counter() - start)


def write_atomically(path: str, data: bytes, fsync_times: list[float]) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        timed_fsync(fd, fsync_times)
    finally:
        os.close(fd)
    os.replace(tmp, path)
