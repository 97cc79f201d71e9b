"""Disk queues, restart and crash safety: what nsqd promises about acknowledged messages."""

from __future__ import annotations

import json
import os
import re
import struct
from pathlib import Path
from typing import Any

import pytest
import trio
from disk_faults import failing_write
from v2client import StartNSQD, V2Client, open_consumer, wait_until

from pnsq.nsqd import disk_files
from pnsq.nsqd.disk_record import HEAD_SIZE, MAGIC
from pnsq.nsqd.nsqd import NSQD
from pnsq.wire import FRAME_TYPE_RESPONSE

pytestmark = pytest.mark.timeout(120)


def is_segment(fd: int) -> bool:
    """Whether ``fd`` is a disk-queue segment (not nsqd.dat or a metadata file)."""
    return re.search(r"\.diskqueue\.\d{6}\.dat$", os.readlink(f"/proc/self/fd/{fd}")) is not None


def files(directory: str, pattern: str) -> list[Path]:
    return list(Path(directory).glob(pattern))


async def consume_all(address: tuple[str, int], topic: str, channel: str, n: int) -> list[Any]:
    """Exactly ``n`` messages, each FINished; then nothing more arrives."""
    received = []
    async with await open_consumer(address, topic, channel, rdy=500) as consumer:
        while len(received) < n:
            batch = await consumer.read_messages(1)
            received += batch
            for message in batch:
                await consumer.fin(message.id)
        assert await consumer.sync() == [], "more messages than were published"
    return received


async def test_100k_messages_through_a_10_message_memory_queue(start_nsqd: StartNSQD) -> None:
    nsqd = await start_nsqd(mem_queue_size=10)
    address = nsqd.tcp_address
    assert address is not None
    total = 100_000
    async with await open_consumer(address, "t", "c", rdy=0) as idle:
        for start in range(0, total, 1000):
            await idle.mpub("t", [b"%d" % i for i in range(start, start + 1000)])
        channel = nsqd.topics["t"].channels["c"]
        await wait_until(lambda: not channel.backend.pending)  # written out, still waiting
        assert (channel.depth(), channel.backend.depth()) == (total, total - 10)
        assert nsqd.topics["t"].depth() == 0
    received = await consume_all(address, "t", "c", total)
    bodies = [int(m.body) for m in received]
    assert len(bodies) == len(set(bodies)) == total, "a message was lost or duplicated"
    assert (channel.depth(), channel.backend.depth()) == (0, 0)


async def test_a_topic_without_channels_keeps_its_overflow_on_disk_for_the_first_one(
    start_nsqd: StartNSQD,
) -> None:
    nsqd = await start_nsqd(mem_queue_size=10)
    address = nsqd.tcp_address
    assert address is not None
    async with await V2Client.connect(address) as producer:
        for start in range(0, 5000, 500):
            await producer.mpub("t", [b"%d" % i for i in range(start, start + 500)])
    topic = nsqd.topics["t"]
    assert (topic.depth(), topic.backend.depth()) == (5000, 4990)
    received = await consume_all(address, "t", "c", 5000)
    assert sorted(int(m.body) for m in received) == list(range(5000))
    assert topic.depth() == 0


async def test_mem_queue_size_0_sends_everything_through_disk(start_nsqd: StartNSQD) -> None:
    nsqd = await start_nsqd(mem_queue_size=0, max_bytes_per_file=4096)
    address = nsqd.tcp_address
    assert address is not None
    async with await open_consumer(address, "t", "c", rdy=0) as consumer:
        await consumer.mpub("t", [b"%03d" % i for i in range(300)])
        channel = nsqd.topics["t"].channels["c"]
        assert channel.backend.depth() == channel.depth() == 300
        assert not channel.memory
        data_path = nsqd.options.data_path
        await wait_until(lambda: len(files(data_path, "t:c.diskqueue.0*.dat")) >= 3)
        await consumer.rdy(1000)
        received = await consumer.read_messages(300)
        for message in received:
            await consumer.fin(message.id)
        assert sorted(m.body for m in received) == [b"%03d" % i for i in range(300)]
        # fully read and finished segments are deleted
        await wait_until(lambda: len(files(data_path, "t:c.diskqueue.0*.dat")) <= 2)


async def test_ephemeral_channels_drop_what_does_not_fit_even_with_mem_queue_size_0(
    start_nsqd: StartNSQD,
) -> None:
    nsqd = await start_nsqd(mem_queue_size=0)
    address = nsqd.tcp_address
    assert address is not None
    async with await open_consumer(address, "t", "c#ephemeral", rdy=2) as consumer:
        await consumer.mpub("t", [b"1", b"2", b"3"])
        received = await consumer.read_messages(2)
        assert [m.body for m in received] == [b"1", b"2"]
        assert await consumer.sync() == []
        assert nsqd.topics["t"].channels["c#ephemeral"].depth() == 0
    assert not files(nsqd.options.data_path, "*ephemeral*")


# -- damaged records ------------------------------------------------------------------------


def record_offsets(path: Path) -> list[int]:
    data = path.read_bytes()
    offsets, pos = [], 0
    while pos < len(data):
        assert data[pos : pos + 4] == MAGIC
        offsets.append(pos)
        pos += HEAD_SIZE + struct.unpack_from(">I", data, pos + 4)[0]
    return offsets


async def test_damaged_records_are_skipped_and_counted_and_the_rest_delivered(
    start_nsqd: StartNSQD, tmp_path: Path
) -> None:
    data_path = tmp_path / "data"
    data_path.mkdir()
    first = await start_nsqd(mem_queue_size=0, data_path=str(data_path))
    address = first.tcp_address
    assert address is not None
    async with await open_consumer(address, "t", "c", rdy=0) as consumer:
        await consumer.mpub("t", [b"message %03d" % i for i in range(100)])
    first.stop()
    await wait_until(lambda: first._lock_fd is None)

    segment = data_path / "t:c.diskqueue.000001.dat"
    offsets = record_offsets(segment)
    assert len(offsets) == 100
    data = bytearray(segment.read_bytes())
    data[offsets[10] + HEAD_SIZE + 30] ^= 0xFF  # a flipped byte in a body
    data[offsets[50] + 5] ^= 0x40  # a flipped bit in a length
    data[offsets[51] + 1] ^= 0x01  # and in the next record's magic: one damaged stretch
    del data[offsets[99] + 20 :]  # the last record cut short
    segment.write_bytes(bytes(data))

    second = await start_nsqd(data_path=str(data_path), tcp_address="127.0.0.1:0")
    address = second.tcp_address
    assert address is not None
    received = await consume_all(address, "t", "c", 96)
    expected = {b"message %03d" % i for i in range(100)} - {
        b"message %03d" % i for i in (10, 50, 51, 99)
    }
    assert {m.body for m in received} == expected
    channel = second.topics["t"].channels["c"]
    assert channel.backend.corrupt_count == 3  # body, the two-record stretch, the cut tail
    assert second.health == "OK"
    async with await V2Client.connect(address) as producer:
        await producer.pub("t", b"still working")


# -- restart ------------------------------------------------------------------------------


async def test_topics_channels_and_pauses_survive_a_restart(
    start_nsqd: StartNSQD, tmp_path: Path
) -> None:
    data_path = tmp_path / "data"
    data_path.mkdir()
    first = await start_nsqd(data_path=str(data_path))
    now = first.now()
    first.get_topic("paused").pause()
    topic = first.get_topic("t")
    topic.get_channel("c", now).pause()
    topic.get_channel("open", now)
    topic.get_channel("gone#ephemeral", now)
    first.get_topic("e#ephemeral")
    first.stop()
    await wait_until(lambda: first._lock_fd is None)
    document = json.loads((data_path / "nsqd.dat").read_bytes())
    assert document["version"] == "1.3.0"

    second = await start_nsqd(data_path=str(data_path))
    assert sorted(second.topics) == ["paused", "t"]
    assert second.topics["paused"].paused
    assert sorted(second.topics["t"].channels) == ["c", "open"]
    assert second.topics["t"].channels["c"].paused
    assert not second.topics["t"].channels["open"].paused


async def test_a_second_nsqd_cannot_use_the_same_data_path(
    start_nsqd: StartNSQD, tmp_path: Path
) -> None:
    first = await start_nsqd()
    second = NSQD(first.options)
    with pytest.raises(Exception, match="in use by another nsqd"):
        await second.serve()


async def test_shutdown_keeps_queued_in_flight_and_deferred_messages_with_their_times(
    start_nsqd: StartNSQD, tmp_path: Path
) -> None:
    data_path = tmp_path / "data"
    data_path.mkdir()
    first = await start_nsqd(data_path=str(data_path))
    address = first.tcp_address
    assert address is not None
    async with await open_consumer(address, "t", "c", rdy=3) as consumer:
        await consumer.mpub("t", [b"q%d" % i for i in range(10)])
        published_at = trio.current_time()
        await consumer.dpub("t", 3000, b"deferred 3 s")
        in_flight = await consumer.read_messages(3)
        await consumer.req(in_flight[0].id, 2000)  # REQ for 2 s
        await consumer.nop()
        await wait_until(lambda: len(first.topics["t"].channels["c"].deferred) == 2)
    first.stop()
    await wait_until(lambda: first._lock_fd is None)

    second = await start_nsqd(data_path=str(data_path))
    address = second.tcp_address
    assert address is not None
    async with await open_consumer(address, "t", "c", rdy=100) as consumer:
        now_ones = await consumer.read_messages(9)
        assert sorted(m.body for m in now_ones) == [b"q%d" % i for i in range(1, 10)]
        assert {m.attempts for m in now_ones if m.body in {b"q1", b"q2"}} == {2}
        assert trio.current_time() < published_at + 2, "deferred timing held back the rest"
        for message in now_ones:
            await consumer.fin(message.id)
        requeued = await consumer.read_messages(1)
        assert (requeued[0].body, requeued[0].attempts) == (b"q0", 2)
        assert trio.current_time() >= published_at + 2
        deferred = await consumer.read_messages(1)
        assert deferred[0].body == b"deferred 3 s"
        assert trio.current_time() >= published_at + 3


# -- a failing disk -------------------------------------------------------------------------


async def test_a_failing_disk_reports_nok_refuses_publishes_and_recovers(
    start_nsqd: StartNSQD, monkeypatch: pytest.MonkeyPatch
) -> None:
    nsqd = await start_nsqd(mem_queue_size=0)
    address = nsqd.tcp_address
    assert address is not None
    monkeypatch.setattr(disk_files, "_os_write", failing_write)
    async with await V2Client.connect(address) as producer:
        await producer.pub("t", b"acknowledged before the failure showed")
        await wait_until(lambda: nsqd.health != "OK")
        assert nsqd.health == "NOK - No space left on device"
        await producer.send(b"PUB t\n\x00\x00\x00\x01x")
        assert (await producer.read_error()).startswith(b"E_PUB_FAILED PUB failed ")
    async with await V2Client.connect(address) as producer:
        await producer.send(b"MPUB t\n" + struct.pack(">iii", 9, 1, 1) + b"x")
        assert (await producer.read_error()).startswith(b"E_MPUB_FAILED MPUB failed ")
    monkeypatch.undo()
    await wait_until(lambda: nsqd.health == "OK", deadline=10)
    received = await consume_all(address, "t", "c", 1)
    assert received[0].body == b"acknowledged before the failure showed"


async def test_durable_publishes_are_acknowledged_after_fsync_in_groups(
    start_nsqd: StartNSQD, monkeypatch: pytest.MonkeyPatch
) -> None:
    nsqd = await start_nsqd(sync_every=1)
    address = nsqd.tcp_address
    assert address is not None
    fsyncs = 0
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        nonlocal fsyncs
        real_fsync(fd)
        fsyncs += is_segment(fd)

    monkeypatch.setattr(disk_files.os, "fsync", counting_fsync)
    acked_after_fsync = []

    async def publisher(n: int) -> None:
        async with await V2Client.connect(address) as producer:
            for i in range(50):
                before = fsyncs
                await producer.send(b"PUB t\n" + struct.pack(">i", 4) + b"%04d" % (n * 100 + i))
                frame_type, data = await producer.read_frame()
                assert (frame_type, data) == (FRAME_TYPE_RESPONSE, b"OK")
                acked_after_fsync.append(fsyncs > before)

    async with trio.open_nursery() as nursery:
        for n in range(8):
            nursery.start_soon(publisher, n)
    assert all(acked_after_fsync), "an OK came before the fsync of its record"
    assert fsyncs <= 400 / 2, "publishes waiting together should share an fsync"
    assert nsqd.topics["t"].backend.depth() == 400


async def test_durable_http_publishes_answer_after_fsync(
    make_nsqd: Any, http: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    nsqd = await make_nsqd(sync_every=1)
    assert nsqd.http_address is not None
    synced: list[int] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        real_fsync(fd)
        if is_segment(fd):
            synced.append(fd)

    monkeypatch.setattr(disk_files.os, "fsync", recording_fsync)
    for path, body in (("/pub?topic=t", b"one"), ("/mpub?topic=t", b"two\nthree")):
        before = len(synced)
        response = await http(nsqd.http_address, "POST", path, body)
        assert (response.status, response.body) == (200, b"OK")
        assert len(synced) > before, "HTTP 200 came before the fsync of the record"
    assert nsqd.topics["t"].backend.depth() == 3
