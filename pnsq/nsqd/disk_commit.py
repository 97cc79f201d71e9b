"""The committer: one long-lived thread that fsyncs what a durable round wrote.

With ``--sync-every=1`` a publish is answered once its record is fsynced, so every round's
fsync sits on the publishers' round trip. A worker thread per round (``trio.to_thread``)
costs the event loop a capacity limiter, a cancel scope and a thread start per round, and
the worker then fights the event loop for the GIL at every step: at 1,000-2,000 rounds a
second that made a round ~3x longer than its fsync. This thread does as little Python as
possible (take file descriptors, ``os.fsync`` each with the GIL released, report through
trio's ``run_sync_soon``), so it needs the GIL only briefly, twice a round. The event loop
writes the records itself before handing the descriptors over (a write of a few KiB to the
page cache costs it less than a handover); see ``disk.Disk.round``.

Only descriptors travel: the event loop closes none while the committer holds them, as the
disk task runs one round at a time and waits for this one.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import outcome
import trio

from .diskqueue import Work

if TYPE_CHECKING:
    from .disk_files import SegmentFiles

APPEND_MAX = 256 * 1024  # a bigger round (MPUB bursts) is written by a worker thread

Report = Callable[[list[OSError | None]], None]


class Committer:
    """fsyncs file descriptors in its own thread; ``await fsync(fds)`` from the event loop."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[list[int], Report] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    async def fsync(self, fds: list[int]) -> list[OSError | None]:
        """fsync every descriptor; the error of each (None when it succeeded).

        Not cancellable: a round taken on is always finished (the caller shields it).
        """
        if self._thread is None:
            self._thread = threading.Thread(
                target=_serve, args=(self._jobs,), name="pnsq-disk-commit", daemon=True
            )
            self._thread.start()
        task = trio.lowlevel.current_task()
        token = trio.lowlevel.current_trio_token()

        def report(errors: list[OSError | None]) -> None:  # in the committer's thread
            token.run_sync_soon(trio.lowlevel.reschedule, task, outcome.Value(errors))

        self._jobs.put((fds, report))
        errors: list[OSError | None] = await trio.lowlevel.wait_task_rescheduled(
            lambda _: trio.lowlevel.Abort.FAILED
        )
        return errors

    def close(self) -> None:
        """Let the thread end once its current job is done (it holds nothing open)."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread = None


def _serve(jobs: queue.SimpleQueue[tuple[list[int], Report] | None]) -> None:
    while (job := jobs.get()) is not None:
        fds, report = job
        errors: list[OSError | None] = []
        for fd in fds:
            try:
                os.fsync(fd)  # looked up per call: tests hold or fail it
                errors.append(None)
            except OSError as err:
                errors.append(err)
        try:
            report(errors)
        except trio.RunFinishedError:
            return  # nsqd stopped without closing its disk (a test's abrupt end)


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


def append(jobs: list[tuple[SegmentFiles, Work]]) -> list[tuple[int, SegmentFiles, Work]]:
    """The event loop's part of an appends-only round: write; returns what to fsync.

    Every queue's ``appends_only`` holds: no file is opened, no segment switched.
    """
    to_sync = []
    for files, work in jobs:
        try:
            for chunk in work.chunks:
                files.write(chunk)
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
