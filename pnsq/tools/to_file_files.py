"""The files of ``pnsq to-file``: nsq_to_file's names, revisions, rotation and work dir.

Everything here blocks (open, write, fsync, link) and is called from a worker thread, once per
batch: ``TopicFiles.sync(data)`` writes a whole batch and fsyncs it, so the caller may FIN the
batch's messages when it returns. A file is created in the work dir and moved to the output dir
when it is rotated or closed, never overwriting: a name that exists gets the next ``<REV>``, as
NSQ does. With gzip every batch is a complete gzip member (NSQ does the same), so a file cut off
by a crash still decompresses up to its last synced batch, and the next run never appends to it
(gzip and interval rotation open files exclusively, bumping ``<REV>``).
"""

from __future__ import annotations

import os
import socket
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass

REV = "<REV>"


@dataclass(frozen=True)
class FileSettings:
    output_dir: str
    work_dir: str
    datetime_format: str = "%Y-%m-%d_%H"
    gzip_level: int = 0  # 0: plain text
    rotate_size: int = 0  # uncompressed bytes, as NSQ counts them
    rotate_interval: float = 0.0
    skip_empty_files: bool = False


def filename_template(
    filename_format: str,
    topic: str,
    settings: FileSettings,
    *,
    host_identifier: str = "",
    hostname: str | None = None,
    pid: int | None = None,
) -> str:
    """The format with <TOPIC>, <HOST> and <PID> filled in; <DATETIME> and <REV> stay.

    ValueError when the format needs <REV> (gzip, rotation or a separate work dir: a second
    file of the same name must be told apart) and has none.
    """
    needs_rev = bool(
        settings.gzip_level
        or settings.rotate_size
        or settings.rotate_interval
        or settings.work_dir != settings.output_dir
    )
    if not needs_rev:
        filename_format = filename_format.replace(REV, "")
    elif REV not in filename_format:
        raise ValueError(
            "missing <REV> in --filename-format when gzip, rotation, or work dir enabled"
        )
    full = hostname if hostname is not None else socket.gethostname()
    short = full.split(".")[0]
    identifier = short
    if host_identifier:
        identifier = host_identifier.replace("<SHORT_HOST>", short).replace("<HOSTNAME>", full)
    name = filename_format.replace("<TOPIC>", topic).replace("<HOST>", identifier)
    name = name.replace("<PID>", str(os.getpid() if pid is None else pid))
    if settings.gzip_level and not name.endswith(".gz"):
        name += ".gz"
    return name


class TopicFiles:
    """One topic's current file: written a batch at a time, rotated, closed and moved."""

    fsync = staticmethod(os.fsync)  # a seam: tests hold a sync to see that nothing is FINed

    def __init__(
        self,
        template: str,
        settings: FileSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.template, self.settings = template, settings
        self.clock, self.wall_clock = clock, wall_clock
        self.fd: int | None = None
        self.path = ""  # of the open file, in the work dir
        self.name = ""  # the template with <DATETIME> filled in
        self.rev = 0
        self.size = 0
        self.opened_at = 0.0
        self.closed_files: list[str] = []  # where each finished file ended up

    def sync(self, data: bytes | bytearray, *, tick: bool = False, close: bool = False) -> None:
        """Write ``data`` (a batch of lines) and fsync it; then, on a sync-interval ``tick``,
        rotate if due (NSQ's ticker); ``close`` closes the file (SIGHUP, shutdown)."""
        if data:
            if self.needs_rotation():
                self.rotate()
            assert self.fd is not None
            self.size += len(data)
            if self.settings.gzip_level:
                data = _gzip_member(data, self.settings.gzip_level)
            _write_all(self.fd, data)
            self.fsync(self.fd)
        if close:
            self.close()
        elif tick and self.needs_rotation():
            if self.settings.skip_empty_files:
                self.close()
            else:
                self.rotate()

    def needs_rotation(self) -> bool:
        if self.fd is None or self._current_name() != self.name:
            return True
        s = self.settings
        if s.rotate_interval and self.clock() - self.opened_at >= s.rotate_interval:
            return True
        return bool(s.rotate_size) and self.size > s.rotate_size

    def rotation_due(self) -> float:
        """When interval rotation is next due (clock time), or infinity."""
        if self.fd is None or not self.settings.rotate_interval:
            return float("inf")
        return self.opened_at + self.settings.rotate_interval

    def rotate(self) -> None:
        self.close()
        name = self._current_name()
        self.rev = 0 if name != self.name else self.rev + 1
        self.name, self.opened_at = name, self.clock()
        self._open_next()

    def close(self) -> None:
        """fsync and close the open file, then move it to the output dir (next free <REV>)."""
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        try:
            self.fsync(fd)
        finally:
            os.close(fd)
        s = self.settings
        if s.work_dir == s.output_dir:
            self.closed_files.append(self.path)
            return
        relative = os.path.relpath(self.path, s.work_dir)
        destination = os.path.join(s.output_dir, relative)
        rev = self.rev
        while not _exclusive_rename(self.path, destination):
            if REV not in self.name:
                raise FileExistsError(f"{destination} exists (and no <REV> to tell them apart)")
            rev += 1
            destination = os.path.join(s.output_dir, self._filled(rev))
        _fsync_dir(os.path.dirname(destination))
        _fsync_dir(os.path.dirname(self.path))
        self.closed_files.append(destination)

    def _current_name(self) -> str:
        datetime = time.strftime(self.settings.datetime_format, time.localtime(self.wall_clock()))
        return self.template.replace("<DATETIME>", datetime)

    def _filled(self, rev: int) -> str:
        return self.name.replace(REV, f"-{rev:06d}")

    def _open_next(self) -> None:
        s = self.settings
        exclusive = bool(s.gzip_level or s.rotate_interval)
        flags = os.O_RDWR | os.O_CREAT | (os.O_EXCL if exclusive else os.O_APPEND)  # RDWR: pread
        while True:
            filled = self._filled(self.rev)
            path = os.path.join(s.work_dir, filled)
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            if s.work_dir != s.output_dir:
                finished = os.path.join(s.output_dir, filled)
                os.makedirs(os.path.dirname(finished) or ".", exist_ok=True)
                if os.path.exists(finished):
                    self.rev += 1
                    continue
            try:
                fd = os.open(path, flags, 0o666)
            except FileExistsError:
                self.rev += 1
                continue
            size = os.fstat(fd).st_size
            if s.rotate_size and size > s.rotate_size:
                os.close(fd)
                self.rev += 1
                continue
            if size and os.pread(fd, 1, size - 1) != b"\n":
                # a crash cut a write short: end that line, so the next ones stay whole
                size += os.write(fd, b"\n")
            break
        # the new name must survive a crash before anything written to it is acknowledged
        _fsync_dir(os.path.dirname(path) or ".")
        self.fd, self.path, self.size = fd, path, size


def _gzip_member(data: bytes | bytearray, level: int) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)  # 31: gzip header and trailer
    return compressor.compress(data) + compressor.flush()


def _write_all(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _exclusive_rename(source: str, destination: str) -> bool:
    """Move without ever replacing an existing file (link, then unlink); False if it exists."""
    try:
        os.link(source, destination)
    except FileExistsError:
        return False
    os.unlink(source)
    return True


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
