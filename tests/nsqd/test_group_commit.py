"""Group commit under --sync-every=1: who waits for which fsync, and what each OK means.

The fsync of segment files is held by a gate (``os.fsync`` replaced, as the other durability
tests do; it runs in nsqd's committer thread), so a test decides when each fsync completes and
sees which answers came before it.
"""

from __future__ import annotations

import errno
import os
import re
import struct
import threading
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing
from v2client import ConnectionClosedError, StartNSQD, V2Client, wait_until

from pnsq.nsqd import disk_files
from pnsq.nsqd.nsqd import NSQD
from pnsq.wire import FRAME_TYPE_ERROR, FRAME_TYPE_RESPONSE

pytestmark = pytest.mark.timeout(60)


def is_segment(fd: int) -> bool:
    return re.search(r"\.diskqueue\.\d{6}\.dat$", os.readlink(f"/proc/self/fd/{fd}")) is not None


class FsyncGate:
    """Segment fsyncs wait for ``allow()``; counts those begun and those completed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.entered = 0
        self.completed = 0
        self.fail: OSError | None = None
        self._allowed = threading.Semaphore(0)
        self._count = threading.Lock()  # several files' fsyncs run at once, in several threads
        self._real = os.fsync
        monkeypatch.setattr(disk_files.os, "fsync", self._fsync)

    def _fsync(self, fd: int) -> None:
        if not is_segment(fd):
            self._real(fd)
            return
        with self._count:
            self.entered += 1
        if not self._allowed.acquire(timeout=30):  # a broken test never hangs nsqd's thread
            raise OSError(errno.ETIMEDOUT, "fsync gate never opened")
        if self.fail is not None:
            raise self.fail
        self._real(fd)
        with self._count:
            self.completed += 1

    def allow(self, n: int = 1) -> None:
        self._allowed.release(n)


def pub(topic: str, body: bytes) -> bytes:
    return b"PUB %s\n%s%s" % (topic.encode(), struct.pack(">i", len(body)), body)


async def started(start_nsqd: StartNSQD, monkeypatch: pytest.MonkeyPatch) -> tuple[NSQD, FsyncGate]:
    """A durable nsqd whose topic ``t`` has its segment open (so rounds go to the committer)."""
    nsqd = await start_nsqd(sync_every=1)
    assert nsqd.tcp_address is not None
    async with await V2Client.connect(nsqd.tcp_address) as warm:
        await warm.pub("t", b"warm-up")
    return nsqd, FsyncGate(monkeypatch)


async def until(predicate: Callable[[], object]) -> None:
    await wait_until(predicate, deadline=10)


async def test_publishes_arriving_during_an_fsync_wait_for_the_next_one_which_acks_them_all(
    start_nsqd: StartNSQD, monkeypatch: pytest.MonkeyPatch
) -> None:
    nsqd, gate = await started(start_nsqd, monkeypatch)
    address = nsqd.tcp_address
    assert address is not None
    backend = nsqd.topics["t"].backend
    acked_after: dict[int, int] = {}  # publisher -> fsyncs completed when its OK arrived

    async def publisher(n: int, client: V2Client) -> None:
        await client.send(pub("t", b"from %d" % n))
        assert await client.read_frame() == (FRAME_TYPE_RESPONSE, b"OK")
        acked_after[n] = gate.completed

    async with trio.open_nursery() as nursery:
        clients = [await V2Client.connect(address) for _ in range(8)]
        nursery.start_soon(publisher, 0, clients[0])
        await until(lambda: gate.entered == 1)  # the first fsync runs, and is held
        for n in range(1, 8):
            nursery.start_soon(publisher, n, clients[n])
        await until(lambda: backend.depth() == 1 + 8)
        await trio.testing.wait_all_tasks_blocked(cushion=0.05)
        assert acked_after == {}, "an OK came before the fsync of its record completed"

        gate.allow()  # the first fsync completes: only the publish it covered is answered
        await until(lambda: 0 in acked_after and gate.entered == 2)
        await trio.testing.wait_all_tasks_blocked(cushion=0.05)
        assert acked_after == {0: 1}

        gate.allow()  # the second fsync covers the seven publishes that came during the first
        await until(lambda: len(acked_after) == 8)
    assert acked_after == {0: 1, **dict.fromkeys(range(1, 8), 2)}
    assert gate.entered == 2, "the seven publishes should share one fsync"
    for client in clients:
        await client.aclose()


async def test_a_failed_fsync_answers_e_pub_failed_and_closes_and_health_recovers(
    start_nsqd: StartNSQD, monkeypatch: pytest.MonkeyPatch
) -> None:
    nsqd, gate = await started(start_nsqd, monkeypatch)
    assert nsqd.tcp_address is not None
    gate.fail = OSError(errno.EIO, os.strerror(errno.EIO))
    async with await V2Client.connect(nsqd.tcp_address) as publisher:
        await publisher.send(pub("t", b"never acknowledged"))
        await until(lambda: gate.entered == 1)
        gate.allow()
        assert (await publisher.read_error()).startswith(b"E_PUB_FAILED PUB failed NOK - ")
        await publisher.expect_closed()
    assert nsqd.health.startswith("NOK")
    gate.fail = None
    gate.allow(100)
    async with await V2Client.connect(nsqd.tcp_address) as publisher:
        await until(lambda: nsqd.health == "OK")  # the unsynced segment is synced again
        await publisher.pub("t", b"acknowledged")


async def answers_in_order(
    nsqd: NSQD, gate: FsyncGate, send_more: Callable[[V2Client], Awaitable[None]]
) -> list[tuple[int, bytes]]:
    """PUB (held by the gate), then ``send_more``; the frames that come back, in order."""
    assert nsqd.tcp_address is not None
    async with await V2Client.connect(nsqd.tcp_address) as client:
        await client.send(pub("t", b"first"))
        await until(lambda: gate.entered == 1)
        await send_more(client)
        await trio.testing.wait_all_tasks_blocked(cushion=0.05)
        gate.allow(10)
        return [await client.read_frame(), await client.read_frame()]


async def test_a_later_command_is_answered_after_the_held_publish(
    start_nsqd: StartNSQD, monkeypatch: pytest.MonkeyPatch
) -> None:
    nsqd, gate = await started(start_nsqd, monkeypatch)

    async def bad_rdy(client: V2Client) -> None:  # answered at once, unless held behind the PUB
        await client.send(b"RDY x\n")

    frames = await answers_in_order(nsqd, gate, bad_rdy)
    assert frames[0] == (FRAME_TYPE_RESPONSE, b"OK")
    assert frames[1][0] == FRAME_TYPE_ERROR
    assert frames[1][1].startswith(b"E_INVALID")


async def test_a_second_pipelined_publish_is_answered_after_the_first(
    start_nsqd: StartNSQD, monkeypatch: pytest.MonkeyPatch
) -> None:
    nsqd, gate = await started(start_nsqd, monkeypatch)

    async def second_pub(client: V2Client) -> None:
        await client.send(pub("t", b"second"))

    frames = await answers_in_order(nsqd, gate, second_pub)
    assert frames == [(FRAME_TYPE_RESPONSE, b"OK")] * 2
    assert gate.entered == 2  # the second waited for its own fsync
    assert nsqd.topics["t"].backend.depth() == 3


async def test_a_publisher_that_half_closes_still_gets_its_ok(
    start_nsqd: StartNSQD, monkeypatch: pytest.MonkeyPatch
) -> None:
    nsqd, gate = await started(start_nsqd, monkeypatch)
    assert nsqd.tcp_address is not None
    stream = await trio.open_tcp_stream(*nsqd.tcp_address)
    client = V2Client(stream)
    async with client:
        await client.send(b"  V2" + pub("t", b"then EOF"))
        await until(lambda: gate.entered == 1)
        await stream.send_eof()
        await trio.testing.wait_all_tasks_blocked(cushion=0.05)
        gate.allow()
        assert await client.read_frame() == (FRAME_TYPE_RESPONSE, b"OK")
        await client.expect_closed()


async def test_with_three_channels_the_ok_waits_for_every_channel_file_fsynced_at_once(
    start_nsqd: StartNSQD, monkeypatch: pytest.MonkeyPatch
) -> None:
    nsqd = await start_nsqd(sync_every=1)
    assert nsqd.tcp_address is not None
    topic = nsqd.get_topic("t")
    for name in ("a", "b", "c"):  # each channel's disk queue takes a copy of every message
        topic.get_channel(name, trio.current_time())
    async with await V2Client.connect(nsqd.tcp_address) as client:
        await client.pub("t", b"warm-up")  # every channel's segment is open now
        gate = FsyncGate(monkeypatch)
        acked = trio.Event()

        async def publish() -> None:
            await client.pub("t", b"in three files")
            acked.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(publish)
            await until(lambda: gate.entered == 3)  # all three fsyncs run together
            gate.allow(2)
            await until(lambda: gate.completed == 2)
            await trio.testing.wait_all_tasks_blocked(cushion=0.05)
            assert not acked.is_set(), "OK before the last channel's file was fsynced"
            gate.allow()
        assert gate.completed == 3
    assert [topic.channels[name].depth() for name in "abc"] == [2, 2, 2]


async def test_a_publish_whose_fsync_is_under_way_when_nsqd_stops_is_still_answered(
    start_nsqd: StartNSQD, monkeypatch: pytest.MonkeyPatch
) -> None:
    nsqd, gate = await started(start_nsqd, monkeypatch)
    assert nsqd.tcp_address is not None
    async with await V2Client.connect(nsqd.tcp_address) as client:
        await client.send(pub("t", b"in flight at shutdown"))
        await until(lambda: gate.entered == 1)
        nsqd.stop()  # cancels the disk task while the committer fsyncs
        await trio.testing.wait_all_tasks_blocked(cushion=0.05)
        gate.allow(10)
        assert await client.read_frame() == (FRAME_TYPE_RESPONSE, b"OK")


async def test_nsqd_stops_while_durable_publishers_keep_publishing(
    start_nsqd: StartNSQD, monkeypatch: pytest.MonkeyPatch
) -> None:
    nsqd, _ = await started(start_nsqd, monkeypatch)
    nsqd_address = nsqd.tcp_address
    assert nsqd_address is not None
    monkeypatch.undo()  # no gate: every fsync goes through
    published = 0

    async def publish_until_cut_off() -> None:
        nonlocal published
        async with await V2Client.connect(nsqd_address) as client:
            try:
                while True:
                    await client.pub("t", b"x")
                    published += 1
            except (ConnectionClosedError, trio.BrokenResourceError, trio.TooSlowError):
                return

    async with trio.open_nursery() as nursery:
        for _ in range(8):  # two groups: while one's fsync runs the other's PUBs are queued
            nursery.start_soon(publish_until_cut_off)
        await until(lambda: published >= 100)
        nsqd.stop()
        with trio.fail_after(15):  # the disk task must not keep serving rounds forever
            await wait_until(lambda: nsqd._lock_fd is None, deadline=15)
