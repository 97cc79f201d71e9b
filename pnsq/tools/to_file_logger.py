"""One topic of ``pnsq to-file``: messages are kept in a batch and FINed only after the batch
holding them is written and fsynced.

The consumer's handler does no I/O: it turns off auto-response and appends the message to the
open batch. A sync takes up to half of ``--max-in-flight`` messages from the batch, joins their
bodies into lines, hands them to a worker thread (``TopicFiles.sync``: write, gzip member, fsync,
rotation -- one thread hop per sync) and then FINs every one of them, so a crash loses nothing
that was FINed and nsqd redelivers what was not. Taking at most half keeps the other half of the
window arriving while a sync runs; taking everything would move the whole window in lockstep
(nsqd sends, the tool syncs, nsqd waits for the FINs), which measured ~2x slower.

A sync starts when the batch holds a quarter of ``--max-in-flight`` (at most 85% of a
connection's share of it: go-nsq's "starved" line, since nsqd sends no more than RDY), 8 MiB or
what reaches ``--rotate-size``; when ``--sync-interval`` has passed (NSQ's ticker, which also
rotates by time or name); when the consumer is starved (a slow poll of ``is_starved()`` covers
RDY moving between connections); or when no message arrived for ``IDLE_POLL`` (NSQ would keep
the tail of a burst unsynced and in flight until the next tick, 30 s by default).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
import anyio.to_thread

from ..client import Consumer, Message
from .to_file_files import TopicFiles

BATCH_BYTES = 8 * 1024 * 1024
IDLE_POLL = 0.1  # seconds between checks for a quiet topic or a starved consumer


class TopicLogger:
    def __init__(
        self,
        files: TopicFiles,
        *,
        max_in_flight: int,
        sync_interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.files, self.max_in_flight = files, max_in_flight
        self.sync_interval, self.clock = sync_interval, clock
        self.consumer: Consumer | None = None
        self.written = 0  # messages written, fsynced and FINed
        self._batch: list[Message] = []
        self._bytes = 0  # of the lines the batch holds
        self._count_limit = max(1, int(max_in_flight * 0.85))
        self._take_limit = max(1, max_in_flight // 2)
        self._byte_limit = BATCH_BYTES
        self._wake = anyio.Event()
        self._full = False  # the open batch is due for a sync
        self._closing = False
        self._close_file = False
        self._lock = anyio.Lock()  # one sync at a time: batches reach the file in order

    async def handle(self, message: Message) -> None:
        """The consumer's handler: add the message to the open batch (no I/O, no await)."""
        message.disable_auto_response()
        batch = self._batch
        if not batch:
            self._wake.set()  # the syncer starts watching this batch
        batch.append(message)
        self._bytes += len(message.body) + 1
        if (len(batch) >= self._count_limit or self._bytes >= self._byte_limit) and not self._full:
            self._full = True
            self._wake.set()

    def reopen(self) -> None:
        """SIGHUP: sync, close the file (moving it to the output dir); the next batch opens a
        new one."""
        self._close_file = True
        self._wake.set()

    async def run(self) -> None:
        """Sync batches until cancelled (call ``aclose`` first to flush the last one)."""
        self._set_limits()
        next_tick = self.clock() + self.sync_interval
        seen = 0  # batch size at the last poll: unchanged means the topic went quiet
        while True:
            now = self.clock()
            wake = min(next_tick, self.files.rotation_due())
            if self._batch:
                wake = min(wake, now + IDLE_POLL)
            if not (self._full or self._close_file):
                with anyio.move_on_after(max(0.0, wake - now)):
                    await self._wake.wait()
            self._wake = anyio.Event()  # what woke us is in the flags read below
            now = self.clock()
            tick = now >= min(next_tick, self.files.rotation_due())
            if tick:
                next_tick = now + self.sync_interval
            pending = len(self._batch)
            polled = now >= wake and pending and (pending == seen or self._starved())
            if tick or polled or self._full or self._close_file:
                await self.sync(tick=tick)
                seen = 0
            else:
                seen = pending

    def start_closing(self) -> None:
        """From now on every message is synced at once (the consumer is draining)."""
        self._closing = True
        self._count_limit = 1
        self._full = bool(self._batch)
        self._wake.set()

    async def aclose(self) -> None:
        """Sync what is left, then close the file (moving it to the output dir)."""
        self._close_file = True
        await self.sync()

    async def sync(self, *, tick: bool = False) -> None:
        async with self._lock:
            close, self._close_file = self._close_file, False
            batch = self._take(everything=close or self._closing)
            if not batch and not tick and not close:
                return
            data = b"\n".join([message.body for message in batch])
            if batch:
                data += b"\n"
            await anyio.to_thread.run_sync(lambda: self.files.sync(data, tick=tick, close=close))
            for message in batch:
                message.finish()
            self.written += len(batch)
            self._set_limits()
            self._full = len(self._batch) >= self._count_limit or self._bytes >= self._byte_limit

    def _take(self, *, everything: bool) -> list[Message]:
        """The messages of the next sync: at most half the window, so that the other half
        arrives while these are written (taking all would move the window in lockstep)."""
        batch = self._batch
        if everything or len(batch) <= self._take_limit:
            self._batch, self._bytes, self._full = [], 0, False
            return batch
        taken = batch[: self._take_limit]
        del batch[: self._take_limit]
        self._bytes -= sum(len(message.body) for message in taken) + len(taken)
        return taken

    def _starved(self) -> bool:
        return self.consumer is not None and self.consumer.is_starved()

    def _set_limits(self) -> None:
        if self._closing:
            return
        connections = len(self.consumer.connections) if self.consumer is not None else 1
        share = self.max_in_flight / max(1, connections)
        self._count_limit = max(1, min(self.max_in_flight // 4, int(share * 0.85)))
        rotate_size = self.files.settings.rotate_size
        if rotate_size:
            left = rotate_size - self.files.size if self.files.size <= rotate_size else rotate_size
            self._byte_limit = max(1, min(BATCH_BYTES, left + 1))
