"""The committer: one long-lived thread that fsyncs what a durable round wrote.

With ``--sync-every=1`` a publish is answered once its record is fsynced, so every round's
fsync sits on the publishers' round trip. A worker thread per round (``trio.to_thread``)
costs the event loop a capacity limiter, a cancel scope and a thread start per round, and
the worker then fights the event loop for the GIL at every step: at 1,000-2,000 rounds a
second that made a round ~3x longer than its fsync. This thread does as little Python as
possible (take file descriptors, ``os.fsync`` each with the GIL released, answer through a
pipe), so it needs the GIL only briefly, twice a round. The event loop writes the records
itself before handing the descriptors over (a write of a few KiB to the page cache costs it
less than a handover); see ``disk.Disk.round``.

Only descriptors travel: the event loop closes none while the committer holds them, as the
disk task runs one round at a time and waits for this one.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import trio

from .diskqueue import Work

if TYPE_CHECKING:
    from .disk_files import SegmentFiles

log = logging.getLogger("pnsq.nsqd")

POOL_SIZE = 8  # files fsynced at once in a round (more wait for a turn)
APPEND_MAX = 256 * 1024  # a bigger round (MPUB bursts) is written by a worker thread


class Committer:
    """fsyncs file descriptors in its own thread; ``await fsync(fds)`` from the event loop.

    A job is handed over through two pipes, one byte each way: the thread blocks in a read
    with the GIL released, and the event loop waits for the answer like for a socket. This
    measured several times cheaper than a queue plus ``run_sync_soon`` (no lock handover, no
    trio entry-queue task).
    """

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._request = self._answer = -1  # the event loop's ends of the two pipes
        self._fds: list[int] = []
        self._errors: list[OSError | None] = []
        self.times: list[float] = []  # the last job's fsync durations (seconds), for /metrics
        self._pool: ThreadPoolExecutor | None = None  # for rounds that wrote several files

    async def fsync(self, fds: list[int]) -> list[OSError | None]:
        """fsync every descriptor; the error of each (None when it succeeded).

        A round taken on is always finished: cancelled (nsqd stopping), this still waits for
        the answer, and the caller's next checkpoint raises the cancellation again. (Cheaper
        than a shielding cancel scope per round, which cost ~7 us.)
        """
        if self._thread is None:
            self._start()
        self._fds = fds
        os.write(self._request, b"s")
        while True:
            try:
                await trio.lowlevel.wait_readable(self._answer)
            except trio.Cancelled:
                with trio.CancelScope(shield=True):
                    await trio.lowlevel.wait_readable(self._answer)
            try:
                os.read(self._answer, 1)
            except BlockingIOError:
                continue
            return self._errors

    def _start(self) -> None:
        request_r, self._request = os.pipe()
        self._answer, answer_w = os.pipe()
        os.set_blocking(self._answer, False)
        self._thread = threading.Thread(
            target=self._serve, args=(request_r, answer_w), name="pnsq-disk-commit", daemon=True
        )
        self._thread.start()

    def _serve(self, request: int, answer: int) -> None:
        """The thread: one job per byte read; ends when the event loop closes its end."""
        try:
            while os.read(request, 1):
                try:
                    results = self._sync_all(self._fds)
                    self._errors = [error for error, _ in results]
                    self.times = [seconds for _, seconds in results]
                except Exception as err:  # a bug here must fail the round, not hang it
                    log.exception("DISK: the committer failed")
                    self._errors = [OSError(errno.EIO, f"committer: {err!r}")] * len(self._fds)
                    self.times = []
                os.write(answer, b"d")
        except OSError:
            pass  # the event loop's end is closed: nsqd is stopping
        finally:
            os.close(request)
            os.close(answer)

    def _sync_all(self, fds: list[int]) -> list[tuple[OSError | None, float]]:
        """fsync each descriptor; several at once when there are several (every channel of
        a topic has its own file): concurrent fsyncs share the filesystem's journal commit,
        so four files cost about one fsync instead of four."""
        if len(fds) == 1:
            return [_fsync(fds[0])]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(POOL_SIZE, thread_name_prefix="pnsq-disk-commit")
        others = [self._pool.submit(_fsync, fd) for fd in fds[1:]]
        return [_fsync(fds[0]), *(future.result() for future in others)]

    def close(self) -> None:
        """End the thread (it holds nothing open once its current job is done)."""
        if self._thread is not None:
            trio.lowlevel.notify_closing(self._answer)
            os.close(self._request)
            os.close(self._answer)
            self._thread = None
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None


def _fsync(fd: int) -> tuple[OSError | None, float]:
    """fsync ``fd``: its error (None when it succeeded) and how long it took (seconds)."""
    start = time.perf_counter()
    try:
        os.fsync(fd)  # looked up per call: tests hold or fail it
    except OSError as err:
        return err, time.perf_counter() - start
    return None, time.perf_counter() - start


def appends_only(jobs: list[tuple[SegmentFiles, Work]]) -> bool:
    """Whether a round only appends to open segments (and fsyncs them): the committer's kind."""
    size = sum(len(c.data) for _, work in jobs for c in work.chunks)
    return size <= APPEND_MAX and all(_appends_only(files, work) for files, work in jobs)


def _appends_only(files: SegmentFiles, work: Work) -> bool:
    return (
        work.read is None
        and work.meta is None
        and not work.delete_all
        and work.delete_below <= files.low_file
        and (not work.chunks or files.append_fd(work.chunks) is not None)
    )


def append(
    jobs: list[tuple[SegmentFiles, Work]], fsync_times: list[float]
) -> list[tuple[int, SegmentFiles, Work]]:
    """The event loop's part of an appends-only round: write; returns what to fsync.

    Every queue's ``appends_only`` holds: no file is opened, no segment switched (so no
    write fsyncs here; ``fsync_times`` is only passed through).
    """
    to_sync = []
    for files, work in jobs:
        try:
            for chunk in work.chunks:
                files.write(chunk, fsync_times)
        except OSError as err:
            work.error = err
        else:
            fd = files.append_fd(work.chunks)
            if work.fsync and fd is not None:
                to_sync.append((fd, files, work))
        work.written, work.unsynced = files.written, files.unsynced
    return to_sync


def synced(to_sync: list[tuple[int, SegmentFiles, Work]], errors: list[OSError | None]) -> None:
    """The committer's fsyncs are done: each queue synced, or failed with its error."""
    for (_, files, work), error in zip(to_sync, errors, strict=True):
        if error is None:
            files.unsynced = work.unsynced = False
        else:
            work.error = error
