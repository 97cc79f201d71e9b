"""A batch published at once behaves as that many single publishes, over real sockets.

nsqd queues an MPUB's messages as one shared batch (one ID and one record each, one
``deque.extend`` per channel) and answers a plain TCP client from its reader; these tests
hold that to what a client sees: every message in order with its own ID, the same IDs in
every channel, attempts and requeues per channel, the counters, all or nothing per MPUB,
and output bigger than the socket takes at once arriving whole.
"""

from __future__ import annotations

import trio
from v2client import V2Client, open_consumer, size_prefix, wait_until

from pnsq.nsqd.nsqd import NSQD
from pnsq.wire import encode_mpub, encode_pub

N = 300


async def test_an_mpub_reaches_every_channel_in_order_with_the_same_unique_ids(
    nsqd: NSQD, address: tuple[str, int]
) -> None:
    bodies = [b"m%03d" % i for i in range(N)]
    a = await open_consumer(address, "t", "a", rdy=0)
    b = await open_consumer(address, "t", "b", rdy=0)
    async with a, b, await V2Client.connect(address) as producer:
        await producer.mpub("t", bodies[:100])
        await producer.mpub("t", bodies[100:])
        await a.rdy(N)
        await b.rdy(N)
        got_a, got_b = await a.read_messages(N), await b.read_messages(N)
        assert [m.body for m in got_a] == bodies
        assert [m.body for m in got_b] == bodies
        assert len({m.id for m in got_a}) == N
        assert [m.id for m in got_a] == [m.id for m in got_b]
        assert {m.attempts for m in got_a + got_b} == {1}
        topic = nsqd.topics["t"]
        assert topic.message_count == N
        assert [topic.channels[c].message_count for c in "ab"] == [N, N]
        (server_producer,) = [c for c in nsqd.clients.values() if c.pub_counts]
        assert server_producer.pub_counts == {"t": N}


async def test_a_requeue_counts_an_attempt_in_its_own_channel_only(
    nsqd: NSQD, address: tuple[str, int]
) -> None:
    a = await open_consumer(address, "t", "a")
    b = await open_consumer(address, "t", "b")
    async with a, b, await V2Client.connect(address) as producer:
        await producer.mpub("t", [b"x", b"y"])
        first_a, first_b = await a.read_message(), await b.read_message()
        await a.req(first_a.id)  # to the back of channel a's queue, behind y
        second_a = await a.read_message()
        assert (second_a.body, second_a.attempts) == (b"y", 1)
        await a.fin(second_a.id)
        again = await a.read_message()
        assert (again.id, again.body, again.attempts) == (first_a.id, b"x", 2)
        await b.fin(first_b.id)
        second_b = await b.read_message()
        assert (second_b.body, second_b.attempts) == (b"y", 1)
        assert nsqd.topics["t"].channels["a"].requeue_count == 1
        assert nsqd.topics["t"].channels["b"].requeue_count == 0


async def test_a_malformed_mpub_in_a_pipelined_write_publishes_nothing_of_its_batch(
    nsqd: NSQD, address: tuple[str, int]
) -> None:
    bad = (
        b"MPUB t\n"
        + size_prefix(31)
        + size_prefix(3)
        + (size_prefix(5) + b"aaaaa") * 2
        + size_prefix(0)
        + b"zzzzz"
    )
    async with await V2Client.connect(address) as client:
        await client.send(encode_pub("t", b"before") + bad + encode_pub("t", b"after"))
        await client.expect_response(b"OK")
        assert await client.read_error() == b"E_BAD_MESSAGE MPUB invalid message(2) body size 0"
        await client.expect_closed()
    topic = nsqd.topics["t"]
    assert (topic.message_count, topic.depth()) == (1, 1)


async def test_a_batch_published_before_any_channel_is_delivered_once_one_appears(
    address: tuple[str, int],
) -> None:
    async with await V2Client.connect(address) as producer:
        await producer.send(encode_mpub("t", [b"1", b"2", b"3"]))
        await producer.expect_response(b"OK")
    async with await open_consumer(address, "t", "c", rdy=3) as consumer:
        got = await consumer.read_messages(3)
        assert [(m.body, m.attempts) for m in got] == [(b"1", 1), (b"2", 1), (b"3", 1)]


async def test_output_bigger_than_the_socket_takes_at_once_arrives_whole_and_in_order(
    nsqd: NSQD, address: tuple[str, int]
) -> None:
    bodies = [bytes([65 + i % 26]) * 16384 for i in range(400)]  # ~6.5 MB of frames
    async with await V2Client.connect(address) as producer:
        for i in range(0, len(bodies), 100):
            await producer.mpub("t", bodies[i : i + 100])
    async with await open_consumer(address, "t", "c", rdy=0) as consumer:
        await consumer.rdy(len(bodies))  # all of it is queued for one socket write
        with trio.fail_after(30):
            got = await consumer.read_messages(len(bodies))
        assert [m.body for m in got] == bodies
        await wait_until(lambda: len(nsqd.topics["t"].channels["c"].in_flight) == len(bodies))


async def test_a_run_of_fins_with_one_not_in_flight_fails_only_that_one(
    nsqd: NSQD, address: tuple[str, int]
) -> None:
    async with (
        await open_consumer(address, "t", "c", rdy=10) as consumer,
        await V2Client.connect(address) as producer,
    ):
        await producer.mpub("t", [b"%d" % i for i in range(10)])
        got = await consumer.read_messages(10)
        stranger = b"ffffffffffffffff"
        run = [m.id for m in got[:5]] + [stranger] + [m.id for m in got[5:]]
        await consumer.send(b"".join(b"FIN " + i + b"\n" for i in run))
        assert await consumer.read_error() == b"E_FIN_FAILED FIN %s failed ID not in flight" % (
            stranger
        )
        assert await consumer.sync() == []  # still connected, nothing redelivered
        channel = nsqd.topics["t"].channels["c"]
        assert len(channel.in_flight) == 0
        (server_consumer,) = channel.clients.values()
        assert (server_consumer.finish_count, server_consumer.in_flight_count) == (10, 0)
