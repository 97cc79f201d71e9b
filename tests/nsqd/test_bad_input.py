"""Hostile and broken clients: nsqd answers (or drops) them and keeps serving everyone else.

Real sockets at 127.0.0.1:0; the daemon runs in this process, so VmRSS of the process bounds the
memory it uses. Every test ends with a fresh PUB + SUB round trip (``assert_still_serving``) and
with no traceback logged (a bug while serving a client is logged with one).
"""

from __future__ import annotations

import gc
import logging
import random
import resource
import struct
from collections.abc import Iterator

import pytest
import trio
import trio.testing
from v2client import V2Client, open_consumer, size_prefix, wait_until

from pnsq.nsqd import protocol_v2
from pnsq.nsqd.nsqd import NSQD

MB = 1024 * 1024


def vm_rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.fixture(autouse=True)
def no_tracebacks(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.INFO, logger="pnsq")
    yield
    crashes = [r for r in caplog.get_records("call") if r.exc_info]
    assert not crashes, f"nsqd logged a traceback: {crashes[0].getMessage()}"


_round_trips = 0


async def assert_still_serving(address: tuple[str, int]) -> None:
    global _round_trips
    _round_trips += 1
    topic = f"alive{_round_trips}"
    async with await open_consumer(address, topic, "c") as consumer:
        await consumer.pub(topic, b"still serving")
        msg = await consumer.read_message()
        assert (msg.body, msg.attempts) == (b"still serving", 1)
        await consumer.fin(msg.id)
        assert await consumer.sync() == []


# -- garbage ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"\x00\x01\x02\x03", b"GET / HTTP/1.1\r\n\r\n", b"  V1", b"V2  ", b"  v2", b"\xff" * 4],
)
async def test_garbage_instead_of_magic_gets_e_bad_protocol_and_close(
    address: tuple[str, int], data: bytes
) -> None:
    async with await V2Client.connect(address, magic=False) as client:
        await client.send(data)
        assert await client.read_error() == b"E_BAD_PROTOCOL"
        await client.expect_closed()
    await assert_still_serving(address)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"HELLO\n", b"E_INVALID invalid command HELLO"),
        (b"\n", b"E_INVALID invalid command "),
        (b" SUB t c\n", b"E_INVALID invalid command "),
        (b"\x00\x00\x00\x05hello\n", b"E_INVALID invalid command \x00\x00\x00\x05hello"),
        (b"\xff\xfe\xc3(\n", b"E_INVALID invalid command \xff\xfe\xc3("),  # not UTF-8: echoed
    ],
)
async def test_garbage_after_magic_gets_e_invalid_and_close(
    address: tuple[str, int], data: bytes, error: bytes
) -> None:
    async with await V2Client.connect(address) as client:
        await client.send(data)
        assert await client.read_error() == error
        await client.expect_closed()
    await assert_still_serving(address)


async def test_random_garbage_gets_an_error_and_never_crashes_the_daemon(
    address: tuple[str, int],
) -> None:
    rng = random.Random(1234)
    for _ in range(100):
        garbage = rng.randbytes(rng.randrange(1, 300))
        if rng.random() < 0.5:  # a command name run into garbage is no command either
            garbage = rng.choice([b"PUB", b"MPUB", b"SUB", b"IDENTIFY", b"DPUB", b"FIN"]) + garbage
        async with await V2Client.connect(address) as client:
            await client.send(garbage + b"\n")
            assert (await client.read_error()).startswith(b"E_INVALID invalid command ")
            await client.expect_closed()
    await assert_still_serving(address)


async def test_a_line_longer_than_16_kib_gets_e_invalid_and_close(
    address: tuple[str, int],
) -> None:
    async with await V2Client.connect(address) as client:
        await client.send(b"NOP " + b"x" * 16 * 1024)
        assert (await client.read_error()).startswith(b"E_INVALID ")
        await client.expect_closed()
    await assert_still_serving(address)


async def test_a_long_line_under_16_kib_is_served(address: tuple[str, int]) -> None:
    async with await V2Client.connect(address) as client:
        await client.send(b"NOP " + b"x" * 16000 + b"\n")
        await client.sync()


# -- huge sizes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"MPUB t\n" + struct.pack(">i", 2**31 - 1), b"E_BAD_BODY MPUB body too big 2147483647 > 5242880"),
        (b"PUB t\n" + struct.pack(">i", 2**31 - 1), b"E_BAD_MESSAGE PUB message too big 2147483647 > 1048576"),
        (b"IDENTIFY\n" + struct.pack(">i", 2**31 - 1), b"E_BAD_BODY IDENTIFY body too big 2147483647 > 5242880"),
        (b"MPUB t\n" + size_prefix(12) + size_prefix(1) + struct.pack(">i", 2**31 - 1) + b"xxxx", b"E_BAD_MESSAGE MPUB message too big 2147483647 > 1048576"),
    ],
)  # fmt: skip
async def test_a_2_gb_size_is_refused_at_once_without_allocating_it(
    address: tuple[str, int], data: bytes, error: bytes
) -> None:
    gc.collect()
    before = vm_rss()
    async with await V2Client.connect(address) as client:
        await client.send(data)
        assert await client.read_error() == error
        await client.expect_closed()
    assert vm_rss() - before < 50 * MB
    await assert_still_serving(address)


# -- half commands ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"  V",
        b"  V2SUB t",
        b"  V2PUB t\n\x00\x00",
        b"  V2PUB t\n" + size_prefix(100) + b"only part of the body",
        b"  V2MPUB t\n" + size_prefix(100) + size_prefix(2) + size_prefix(5) + b"ab",
        b"  V2IDENTIFY\n" + size_prefix(50) + b'{"client_id":',
        b"  V2DPUB t 1000\n" + size_prefix(10) + b"x",
    ],
)
async def test_a_half_sent_command_then_disconnect_leaves_nothing_behind(
    nsqd: NSQD, address: tuple[str, int], data: bytes
) -> None:
    async with await V2Client.connect(address, magic=False) as client:
        await client.send(data)
        await wait_until(lambda: len(nsqd.clients) == 1)
    await wait_until(lambda: not nsqd.clients)
    topic = nsqd.topics.get("t")
    assert topic is None or topic.depth() == 0, "nothing half-received was published"
    await assert_still_serving(address)


async def test_a_consumer_that_vanishes_mid_stream_loses_nothing(
    nsqd: NSQD, address: tuple[str, int]
) -> None:
    async with await open_consumer(address, "t", "c", rdy=5) as consumer:
        await consumer.mpub("t", [b"%d" % i for i in range(10)])
        await consumer.read_messages(5)
    await wait_until(lambda: not nsqd.clients)
    channel = nsqd.topics["t"].channels["c"]
    assert (channel.depth(), len(channel.in_flight)) == (5, 5)
    await assert_still_serving(address)


# -- clients that do not read --------------------------------------------------------------


async def test_a_publisher_that_never_reads_is_stopped_not_buffered(
    nsqd: NSQD, address: tuple[str, int]
) -> None:
    """The server stops reading from a client whose answers pile up, and serves the others."""
    command = b"PUB flood#ephemeral\n" + size_prefix(1) + b"x"
    chunk = command * (MB // len(command))
    limit = 64 * MB  # far more than nsqd's high-water mark plus any kernel buffering
    sent = 0
    stream = await trio.open_tcp_stream(*address)
    await stream.send_all(b"  V2")
    await wait_until(lambda: len(nsqd.clients) == 1)
    (flooder,) = nsqd.clients.values()
    gc.collect()
    before = vm_rss()

    async def flood() -> None:
        nonlocal sent
        while sent < limit:
            await stream.send_all(chunk)
            sent += len(chunk)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(flood)
        await wait_until(lambda: len(flooder.out) > protocol_v2.HIGH_WATER, deadline=30)
        published = flooder.pub_counts["flood#ephemeral"]
        await trio.testing.wait_all_tasks_blocked(cushion=0.1)
        assert flooder.pub_counts["flood#ephemeral"] == published, "the server stopped reading"
        assert sent < limit, "so the client's sends block"
        growth = vm_rss() - before
        assert growth < 50 * MB, f"memory grew by {growth / MB:.1f} MB"
        assert len(flooder.out) < protocol_v2.HIGH_WATER + protocol_v2.RECEIVE_SIZE
        assert flooder.reader.buffered < 64
        await assert_still_serving(address)
        nursery.cancel_scope.cancel()
    await stream.aclose()
    await wait_until(lambda: flooder.id not in nsqd.clients)
    await assert_still_serving(address)


@pytest.fixture
def file_descriptors() -> Iterator[None]:
    """Room for 2000 connections with both ends in this process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4096 + 256
    if soft >= wanted:
        yield
        return
    assert hard == resource.RLIM_INFINITY or hard >= wanted, f"hard limit of {hard} open files"
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.usefixtures("file_descriptors")
async def test_2000_idle_connections_cost_little_and_block_no_one(
    nsqd: NSQD, address: tuple[str, int]
) -> None:
    n = 2000
    streams: list[trio.SocketStream] = []
    gc.collect()
    before = vm_rss()
    try:
        for i in range(n):
            stream = await trio.open_tcp_stream(*address)
            streams.append(stream)
            if i % 2:
                await stream.send_all(b"  V2")  # half say hello, half say nothing at all
        await wait_until(lambda: len(nsqd.clients) == n, deadline=30)
        await trio.testing.wait_all_tasks_blocked(cushion=0.05)
        per_connection = (vm_rss() - before) / n
        # Both ends live in this process; measured at about 16 KiB per connection.
        assert per_connection < 64 * 1024, f"{per_connection / 1024:.1f} KiB per connection"
        await assert_still_serving(address)
    finally:
        for stream in streams:
            await stream.aclose()
    await wait_until(lambda: not nsqd.clients, deadline=30)
    await assert_still_serving(address)


async def test_a_client_resetting_its_connection_is_a_quiet_disconnect(
    nsqd: NSQD, address: tuple[str, int]
) -> None:
    """A reset (RST, as a killed client's kernel sends) ends that connection like a close: no
    traceback, no "internal error" (the autouse fixture fails the test on either)."""
    for subscribed in (False, True):
        sock = trio.socket.socket()
        await sock.connect(address)
        await sock.send(b"  V2" + (b"SUB reset ch\n" if subscribed else b""))
        if subscribed:
            assert await sock.recv(100) == b"\x00\x00\x00\x06\x00\x00\x00\x00OK"
        sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
        await wait_until(lambda: not nsqd.clients)
    await assert_still_serving(address)
