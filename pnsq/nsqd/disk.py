"""The disk task: one per nsqd, running the rounds of every disk queue.

The event loop never touches a file. ``put`` appends a queue's records to its pending bytes
and marks it; this task gathers, for every marked queue, its planned ``Work`` (pending bytes,
a read-ahead request, metadata) and does all of it in ONE worker-thread call
(``disk_files.execute``, a "round"). Results are decoded back in the event loop
(``DiskQueue.apply``). This is trio's file API (file calls in worker threads) with the calls
of a whole round batched into one thread hop, so the cost per message is a few hundred
nanoseconds whatever the disk does. Durable mode's usual round, appends to open segments
and their fsync, takes a shorter way: written by this task, fsynced by the committer thread
(``disk_commit``), as a round trip per round is what durable publishers wait on.

``--sync-every`` / ``--sync-timeout``: a "full sync" (fsync every file written since the last
one, then write every changed metadata file) happens after that many records written or read,
or after that long with unsynced activity. With ``--sync-every=1`` (durable mode) every round
also fsyncs the files it wrote, and publishers wait for the round that carries their records
(``ticket()``): one fsync covers every publish waiting at that moment, across connections.
Publishes that arrive while a round's fsync runs wait for the next round, which starts as
soon as that one ends and covers all of them (group commit); their answers go out together
(``Round.finish``).
A failing disk turns health to ``NOK - <reason>`` and publishes are refused until a round
succeeds again (tried every ``RETRY_AFTER``).

For /metrics the disk keeps two plain numbers, updated once per round by the event loop: the
durations of the round's fsyncs as histogram buckets (``fsync_seconds``) and the damaged records
skipped so far (``corrupt_records``, which outlives deleted topics, as a counter must).
"""

from __future__ import annotations

import bisect
import itertools
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio

from .backend import OnRead
from .disk_commit import Committer, append, appends_only, synced
from .disk_files import SegmentFiles, execute
from .disk_record import PAYLOAD_HEAD
from .diskqueue import DiskQueue, Work

if TYPE_CHECKING:
    from .options import Options

log = logging.getLogger("pnsq.nsqd")

RETRY_AFTER = 1.0  # seconds between rounds while the disk fails
# Upper bounds (seconds) of the fsync histogram's buckets: an SSD's fsync takes 0.1-10 ms, a
# spinning disk's 10-100 ms, a disk in trouble seconds.
# fmt: off
FSYNC_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                 0.5, 1.0, 2.5, 5.0, 10.0)
# fmt: on


class Histogram:
    """Observations counted into buckets (``le`` upper bounds), as Prometheus keeps them."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # per bucket; the last one is +Inf
        self.sum = 0.0

    def observe(self, values: list[float]) -> None:
        for value in values:
            self.counts[bisect.bisect_left(self.bounds, value)] += 1
            self.sum += value

    def cumulative(self) -> list[int]:
        """Observations at or below each bound, and the total (Prometheus' buckets)."""
        return list(itertools.accumulate(self.counts))


@dataclass(eq=False)
class Round:
    """A round of disk work; durable publishers wait on it.

    ``on_done`` callbacks run in the disk task the moment the round ends, before ``done`` is
    set: a TCP connection releases its held answers there (one direct send each), so the OKs
    of a whole group go out together without waking a task per publisher.
    """

    done: trio.Event = field(default_factory=trio.Event)
    ok: bool = False
    on_done: list[Callable[[bool], None]] = field(default_factory=list)

    def finish(self, ok: bool) -> None:
        self.ok = ok
        for release in self.on_done:
            try:
                release(ok)
            except Exception:  # a bug in one connection's release must not stop the disk
                log.exception("DISK: releasing a durable publish's answer failed")
        self.done.set()


class Disk:
    """Every disk queue of one nsqd, and the task that does their I/O (the ``DiskHost``)."""

    def __init__(self, options: Options, set_health: Callable[[str], None]) -> None:
        self.data_path = options.data_path or os.getcwd()
        self.max_bytes_per_file = options.max_bytes_per_file
        self.max_payload = PAYLOAD_HEAD + max(options.max_msg_size, 1)
        self.sync_every = options.sync_every
        self.sync_timeout = options.sync_timeout
        self.durable = options.sync_every == 1
        self.healthy = True
        self.ops = 0  # records written or read since the last full sync
        self.metadata: Callable[[], bytes] | None = None  # nsqd.dat's contents
        self.metadata_dirty = False
        self._set_health = set_health
        self._marked: dict[int, DiskQueue] = {}
        self._queues: dict[int, tuple[DiskQueue, SegmentFiles]] = {}
        self._wake = trio.Event()
        self._round = Round()
        self._wanted = False  # a durable publisher waits on the next round
        self._last_sync = -math.inf
        self._committer = Committer()
        self.fsync_seconds = Histogram(FSYNC_BUCKETS)
        self.corrupt_records = 0  # damaged records skipped, over every queue ever opened

    def open(self, name: str, on_read: OnRead, wants_read: Callable[[], bool]) -> DiskQueue:
        """The disk queue ``name``, picking up what a previous run left in its files."""
        files = SegmentFiles(self.data_path, name)
        queue = DiskQueue(self, name, on_read, wants_read, files.recover(self.max_payload))
        self._queues[id(queue)] = (queue, files)
        return queue

    def persist_metadata(self) -> None:
        self.metadata_dirty = True
        self._wake.set()

    def ticket(self) -> Round:
        """The round that will carry what was put so far (durable publishers await it)."""
        self._wanted = True
        self._wake.set()
        return self._round

    # -- DiskHost ---------------------------------------------------------------------------

    def mark(self, queue: DiskQueue) -> None:
        """``queue`` has something for the next round."""
        self._marked[id(queue)] = queue
        self._wake.set()

    def read_stored(self, queue: DiskQueue, file: int, pos: int, n: int) -> list[bytes]:
        entry = self._queues.get(id(queue))
        return [] if entry is None else entry[1].peek(file, pos, n, self.max_payload)

    @staticmethod
    def now() -> float:
        return trio.current_time()

    @staticmethod
    def wall_ns() -> int:
        return time.time_ns()

    # -- rounds ---------------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            # a committer round finishes even when cancelled; stop here, between rounds
            await trio.lowlevel.checkpoint_if_cancelled()
            if not (self._marked or self._wanted or self.metadata_dirty):
                unsynced = self.ops or any(q.needs_sync() for q, _ in self._queues.values())
                deadline = self._last_sync + self.sync_timeout if unsynced else math.inf
                with trio.move_on_at(deadline):
                    await self._wake.wait()
                self._wake = trio.Event()
            if not await self.round():
                await trio.sleep(RETRY_AFTER)

    async def round(self, *, full_sync: bool = False, closing: bool = False) -> bool:
        """Do every queue's pending work in one thread call; False if any of it failed."""
        now = self.now()
        full_sync = full_sync or self._sync_due(now)
        current, self._round = self._round, Round()
        self._wanted = False
        jobs = [(q, f, q.plan(full_sync, self.durable)) for q, f in self._take_marked(full_sync)]
        metadata = None
        if self.metadata is not None and (self.metadata_dirty or closing):
            metadata = self.metadata()
            self.metadata_dirty = False
        pairs = [(f, w) for _, f, w in jobs]
        error = None  # nsqd.dat's
        fsync_times: list[float] = []
        if self.durable and metadata is None and appends_only(pairs):
            # finished even when cancelled (``Committer.fsync``)
            await self._commit(pairs, fsync_times)
        else:
            with trio.CancelScope(shield=True):  # a round taken on is always finished
                error = await trio.to_thread.run_sync(
                    execute, pairs, metadata, self.data_path, fsync_times
                )
        self.fsync_seconds.observe(fsync_times)
        now, wall_ns = self.now(), self.wall_ns()
        for queue, files, work in jobs:
            self._apply(queue, files, work, now, wall_ns)
        errors = [w.error for _, _, w in jobs if w.error is not None]
        if error is not None:
            errors.append(error)
            self.metadata_dirty = True
        self._report(errors, full_sync, now)
        current.finish(not errors)
        if self._marked:
            self._wake.set()
        return not errors

    async def _commit(
        self, pairs: list[tuple[SegmentFiles, Work]], fsync_times: list[float]
    ) -> None:
        """Durable publishing's usual round: written here, fsynced by the committer thread."""
        to_sync = append(pairs, fsync_times)
        if to_sync:
            synced(to_sync, await self._committer.fsync([fd for fd, _, _ in to_sync]))
            fsync_times += self._committer.times

    def _sync_due(self, now: float) -> bool:
        if now >= self._last_sync + self.sync_timeout:
            return True
        return not self.durable and self.ops >= self.sync_every

    def _take_marked(self, full_sync: bool) -> list[tuple[DiskQueue, SegmentFiles]]:
        """The queues this round serves: the marked ones, or every one for a full sync."""
        marked = self._marked
        self._marked = {}
        if full_sync:
            ids = list(self._queues) + [i for i in marked if i not in self._queues]
        else:
            ids = list(marked)
        return [self._queues[i] for i in ids if i in self._queues]

    def _apply(
        self, queue: DiskQueue, files: SegmentFiles, work: Work, now: float, wall_ns: int
    ) -> None:
        if work.error is not None:
            self._marked[id(queue)] = queue  # tried again next round
        if work.delete_all:
            if work.error is None:
                self._queues.pop(id(queue), None)
            return
        corrupt = queue.corrupt_count
        self.ops += queue.apply(work, now, wall_ns)
        self.corrupt_records += queue.corrupt_count - corrupt
        if queue.corrupt_count > corrupt and work.read is not None:
            log.error(
                "DISKQUEUE(%s): skipped %d damaged record(s) in %s",
                queue.name,
                queue.corrupt_count - corrupt,
                files.segment_path(work.read[0]),
            )
        if queue.wants_disk_read():
            self._marked.setdefault(id(queue), queue)

    def _report(self, errors: list[OSError], full_sync: bool, now: float) -> None:
        """Health follows the last round: NOK with the first error, OK once one succeeds."""
        if errors:
            reason = errors[0].strerror or str(errors[0])
            if self.healthy:
                log.error("DISK: write failed - %s", reason)
            self.healthy = False
            self._set_health(f"NOK - {reason}")
            return
        if not self.healthy:
            log.info("DISK: writes succeed again")
            self.healthy = True
            self._set_health("OK")
        if full_sync:
            self._last_sync = now
            self.ops = 0

    async def close(self) -> None:
        """Write, sync and close everything (graceful shutdown)."""
        for _ in range(3):  # a failing disk gets a few tries
            if await self.round(full_sync=True, closing=True):
                break
        self._committer.close()
        for _, files in self._queues.values():
            files.close()
