"""What consumers rely on when messages flow: IDs, attempts, fan-out, RDY, CLS, full queues.

Real sockets at 127.0.0.1:0. "Nothing more arrives" is proved with ``sync()`` (a round trip that
every earlier frame precedes), never by waiting a while.
"""

from __future__ import annotations

import re
import time

from v2client import StartNSQD, V2Client, open_consumer, wait_until

from pnsq.nsqd.nsqd import NSQD


async def test_message_id_is_16_hex_chars_and_the_same_in_every_channel(
    address: tuple[str, int],
) -> None:
    async with (
        await open_consumer(address, "t", "a") as a,
        await open_consumer(address, "t", "b") as b,
        await V2Client.connect(address) as producer,
    ):
        await producer.pub("t", b"hello")
        msg_a, msg_b = await a.read_message(), await b.read_message()
    assert re.fullmatch(rb"[0-9a-f]{16}", msg_a.id)
    assert (msg_a.id, msg_a.timestamp, msg_a.body) == (msg_b.id, msg_b.timestamp, msg_b.body)


async def test_message_ids_are_unique_across_10000_messages(address: tuple[str, int]) -> None:
    n = 10_000
    async with (
        await open_consumer(address, "t", "c", rdy=2500) as consumer,
        await V2Client.connect(address) as producer,
    ):
        for start in range(0, n, 2000):
            await producer.mpub("t", [b"%d" % i for i in range(start, start + 2000)])
        ids = set()
        for _ in range(n):
            msg = await consumer.read_message()
            ids.add(msg.id)
            await consumer.fin(msg.id)
        assert await consumer.sync() == []
    assert len(ids) == n


async def test_first_delivery_has_attempts_1_and_req_redelivers_with_attempts_2(
    address: tuple[str, int],
) -> None:
    async with await open_consumer(address, "t", "c") as consumer:
        await consumer.pub("t", b"retry me")
        first = await consumer.read_message()
        await consumer.req(first.id, 0)
        second = await consumer.read_message()
        await consumer.req(second.id, 0)
        third = await consumer.read_message()
    assert [first.attempts, second.attempts, third.attempts] == [1, 2, 3]
    assert first.id == second.id == third.id
    assert first.body == second.body == third.body == b"retry me"


async def test_timestamp_is_the_publish_time_and_survives_requeue(
    address: tuple[str, int],
) -> None:
    async with await open_consumer(address, "t", "c") as consumer:
        before = time.time_ns()
        await consumer.pub("t", b"x")
        after = time.time_ns()
        first = await consumer.read_message()
        await consumer.req(first.id, 0)
        again = await consumer.read_message()
    assert before <= first.timestamp <= after
    assert again.timestamp == first.timestamp


async def test_topic_fans_out_every_message_to_every_channel(address: tuple[str, int]) -> None:
    bodies = [b"m%d" % i for i in range(20)]
    async with (
        await open_consumer(address, "t", "a", rdy=100) as a,
        await open_consumer(address, "t", "b", rdy=100) as b,
        await open_consumer(address, "t", "c#ephemeral", rdy=100) as c,
        await V2Client.connect(address) as producer,
    ):
        await producer.mpub("t", bodies[:10])
        for body in bodies[10:]:
            await producer.pub("t", body)
        for consumer in (a, b, c):
            received = await consumer.read_messages(20)
            assert sorted(m.body for m in received) == sorted(bodies)
            assert await consumer.sync() == []


async def test_a_channel_load_balances_between_its_consumers(address: tuple[str, int]) -> None:
    async with (
        await open_consumer(address, "t", "c", rdy=100) as one,
        await open_consumer(address, "t", "c", rdy=100) as two,
        await V2Client.connect(address) as producer,
    ):
        for i in range(40):
            await producer.pub("t", b"%d" % i)
        got_one, got_two = await one.sync(), await two.sync()
    assert len(got_one) >= 10, "each consumer gets a fair share, even one message at a time"
    assert len(got_two) >= 10, "each consumer gets a fair share, even one message at a time"
    bodies = [m.body for m in got_one + got_two]
    assert sorted(bodies) == sorted(b"%d" % i for i in range(40)), "each message exactly once"


async def test_a_topic_without_channels_keeps_messages_for_its_first_channel(
    address: tuple[str, int],
) -> None:
    async with await V2Client.connect(address) as producer:
        await producer.mpub("t", [b"1", b"2", b"3"])
        await producer.pub("t", b"4")
    async with await open_consumer(address, "t", "first", rdy=10) as first:
        assert sorted(m.body for m in await first.read_messages(4)) == [b"1", b"2", b"3", b"4"]
        # A channel created later starts from what is published after it exists.
        async with await open_consumer(address, "t", "second", rdy=10) as second:
            assert await second.sync() == []
            await first.pub("t", b"5")
            assert [m.body for m in await second.read_messages(1)] == [b"5"]


async def test_rdy_is_a_cap_on_in_flight_not_a_countdown(address: tuple[str, int]) -> None:
    """B.1: after RDY 4, two FINs let exactly two more messages through."""
    async with await open_consumer(address, "t", "c", rdy=0) as consumer:
        await consumer.mpub("t", [b"%d" % i for i in range(10)])
        await consumer.rdy(4)
        first = await consumer.read_messages(4)
        assert await consumer.sync() == []
        await consumer.fin(first[0].id)
        await consumer.fin(first[1].id)
        more = await consumer.sync()
        assert len(more) == 2
        for msg in first[2:] + more:
            await consumer.fin(msg.id)
        assert len(await consumer.sync()) == 4
        assert len({m.id for m in first + more}) == 6


async def test_rdy_0_stops_delivery_and_raising_it_resumes(address: tuple[str, int]) -> None:
    async with await open_consumer(address, "t", "c", rdy=1) as consumer:
        await consumer.rdy(0)
        await consumer.mpub("t", [b"a", b"b", b"c"])
        assert await consumer.sync() == []
        await consumer.rdy(2)
        assert [m.body for m in await consumer.sync()] == [b"a", b"b"]


async def test_req_with_a_delay_frees_room_under_rdy(address: tuple[str, int]) -> None:
    async with await open_consumer(address, "t", "c", rdy=1) as consumer:
        await consumer.mpub("t", [b"a", b"b"])
        a = await consumer.read_message()
        assert await consumer.sync() == []
        await consumer.req(a.id, 60_000)  # deferred: room frees, "b" comes next
        assert [m.body for m in await consumer.sync()] == [b"b"]


async def test_cls_answers_close_wait_ignores_rdy_and_still_accepts_fin(
    nsqd: NSQD, address: tuple[str, int]
) -> None:
    """B.2: after CLS the connection stays open; RDY is ignored; FIN still works."""
    async with await open_consumer(address, "t", "c", rdy=2) as consumer:
        await consumer.mpub("t", [b"1", b"2", b"3", b"4"])
        held = await consumer.read_messages(2)
        await consumer.cls()
        await consumer.rdy(100)
        assert await consumer.sync() == [], "RDY after CLS is ignored"
        await consumer.fin(held[0].id)
        await consumer.req(held[1].id, 0)
        assert await consumer.sync() == [], "answering in-flight messages brings no new ones"
        channel = nsqd.topics["t"].channels["c"]
        assert len(channel.in_flight) == 0
        assert channel.depth() == 3
    async with await open_consumer(address, "t", "c", rdy=10) as successor:
        assert sorted(m.body for m in await successor.read_messages(3)) == [b"2", b"3", b"4"]


async def test_a_full_memory_queue_overflows_to_disk(start_nsqd: StartNSQD) -> None:
    nsqd = await start_nsqd(mem_queue_size=3)
    address = nsqd.tcp_address
    assert address is not None
    async with await V2Client.connect(address) as producer:
        for i in range(10):
            await producer.pub("t", b"%d" % i)
    topic = nsqd.topics["t"]
    assert (topic.depth(), topic.backend.depth()) == (10, 7)
    async with await open_consumer(address, "t", "c", rdy=100) as consumer:
        received = await consumer.read_messages(10)
        assert sorted(int(m.body) for m in received) == list(range(10))
        assert await consumer.sync() == []


async def test_a_full_channel_overflows_mpub_to_disk(start_nsqd: StartNSQD) -> None:
    nsqd = await start_nsqd(mem_queue_size=5)
    address = nsqd.tcp_address
    assert address is not None
    async with await open_consumer(address, "t", "c", rdy=0) as consumer:
        await consumer.mpub("t", [b"1", b"2", b"3"])
        await consumer.mpub("t", [b"4", b"5", b"6", b"7"])
        channel = nsqd.topics["t"].channels["c"]
        assert (channel.depth(), channel.backend.depth()) == (7, 2)
        await consumer.rdy(10)
        received = await consumer.read_messages(7)
        assert sorted(m.body for m in received) == [b"%d" % i for i in range(1, 8)]
        assert await consumer.sync() == []


async def test_an_ephemeral_channel_silently_drops_overflow(start_nsqd: StartNSQD) -> None:
    nsqd = await start_nsqd(mem_queue_size=5)
    address = nsqd.tcp_address
    assert address is not None
    async with await open_consumer(address, "t", "c#ephemeral", rdy=0) as consumer:
        for i in range(8):
            await consumer.pub("t", b"%d" % i)
        await consumer.mpub("t", [b"8", b"9"])
        await consumer.rdy(100)
        received = await consumer.sync()
    assert sorted(m.body for m in received) == [b"0", b"1", b"2", b"3", b"4"]


async def test_an_ephemeral_channel_is_deleted_when_its_last_client_disconnects(
    nsqd: NSQD, address: tuple[str, int]
) -> None:
    topic = nsqd.get_topic("t")
    async with await open_consumer(address, "t", "c#ephemeral") as first:
        async with await open_consumer(address, "t", "c#ephemeral"):
            pass
        await first.sync()
        assert "c#ephemeral" in topic.channels, "one client left: the channel stays"
    await wait_until(lambda: "c#ephemeral" not in topic.channels)
    assert "t" in nsqd.topics, "a durable topic outlives its ephemeral channel"


async def test_an_ephemeral_topic_is_deleted_with_its_last_channel(
    nsqd: NSQD, address: tuple[str, int]
) -> None:
    async with (
        await open_consumer(address, "t#ephemeral", "a#ephemeral"),
        await open_consumer(address, "t#ephemeral", "b#ephemeral") as b,
    ):
        await b.sync()
    await wait_until(lambda: "t#ephemeral" not in nsqd.topics)
    # Published to again, it starts afresh.
    async with await open_consumer(address, "t#ephemeral", "a#ephemeral") as again:
        await again.pub("t#ephemeral", b"new")
        assert (await again.read_message()).attempts == 1


async def test_a_consumer_may_also_publish(address: tuple[str, int]) -> None:
    async with await open_consumer(address, "t", "c") as consumer:
        await consumer.pub("other", b"x")
        await consumer.mpub("other", [b"y"])
        await consumer.dpub("other", 0, b"z")
        await consumer.cls()
        await consumer.pub("other", b"still allowed after CLS")


def _mpub_body(bodies: list[bytes]) -> bytes:
    parts = b"".join(len(b).to_bytes(4, "big") + b for b in bodies)
    return (4 + len(parts)).to_bytes(4, "big") + len(bodies).to_bytes(4, "big") + parts
