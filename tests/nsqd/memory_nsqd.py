"""An nsqd without listeners for tests in virtual time (trio's MockClock).

Each client is a ``ConnectionV2`` over an in-memory stream pair, with the daemon's timer task
(and, when asked, its drain task) beside it, so whenever every task waits the clock jumps to the
next deadline: a 60 s timeout takes no real time and a timer that fires at the wrong moment is
seen exactly. No socket I/O runs, which would make the clock jump while bytes are in the kernel.
``stop`` records when the daemon asked to stop (the drain's end) instead of stopping anything.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio
import trio.testing
from v2client import V2Client

from pnsq.nsqd.nsqd import NSQD
from pnsq.nsqd.options import Options
from pnsq.nsqd.protocol_v2 import ConnectionV2
from pnsq.wire import MAGIC_V2

READ_TIMEOUT = 3600.0  # virtual seconds a read may wait: longer than any timer under test


class MemoryNSQD:
    def __init__(self, nsqd: NSQD, nursery: trio.Nursery) -> None:
        self.nsqd = nsqd
        self._nursery = nursery
        self.stopped_at: float | None = None
        self.stopped = trio.Event()

    def stop(self) -> None:
        self.stopped_at = trio.current_time()
        self.stopped.set()

    async def connect(self, **identify: Any) -> V2Client:
        client_stream, server_stream = trio.testing.memory_stream_pair()
        client = self.nsqd.add_client(("127.0.0.1", 1234))

        async def serve() -> None:
            try:
                await ConnectionV2(self.nsqd, client, server_stream).run()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            finally:
                self.nsqd.remove_client(client)
                await server_stream.aclose()

        self._nursery.start_soon(serve)
        v2 = V2Client(client_stream, timeout=READ_TIMEOUT)
        await v2.send(MAGIC_V2)
        if identify:
            await v2.identify(**identify)
        return v2

    async def consumer(self, topic: str, channel: str, rdy: int = 1, **identify: Any) -> V2Client:
        v2 = await self.connect(**identify)
        await v2.subscribe(topic, channel, rdy)
        return v2

    def channel(self, topic: str, channel: str) -> Any:
        return self.nsqd.topics[topic].channels[channel]


@asynccontextmanager
async def memory_nsqd(*, drain: bool = False, **overrides: Any) -> AsyncIterator[MemoryNSQD]:
    """Memory queues only (no disk task runs); ``drain`` runs the drain task with ``stop``."""
    data_path = tempfile.mkdtemp(prefix="pnsq-memory-")
    nsqd = NSQD(Options(tcp_address="", http_address="", data_path=data_path, **overrides))
    async with trio.open_nursery() as nursery:
        server = MemoryNSQD(nsqd, nursery)
        nursery.start_soon(nsqd.run_timers)
        if drain:
            nursery.start_soon(nsqd.drain.run, server.stop)
        yield server
        nursery.cancel_scope.cancel()
    shutil.rmtree(data_path, ignore_errors=True)
