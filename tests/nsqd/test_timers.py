"""Timeouts, deferrals and heartbeats, in virtual time.

The nsqd runs without listeners: each client is a ``ConnectionV2`` over an in-memory stream pair,
with the daemon's timer task beside it, all under ``MockClock(autojump_threshold=0)`` (pytest-trio's
``autojump_clock`` fixture, which a test must take as an argument for pytest-trio to use it). Whenever every task waits, the clock jumps to the next deadline, so a
60 s timeout takes no real time and a timer that fires at the wrong moment is seen exactly. No
socket I/O runs, which would make the clock jump while bytes are in the kernel.
"""

from __future__ import annotations

import trio
import trio.lowlevel
import trio.testing
from memory_nsqd import memory_nsqd

from pnsq.wire import FRAME_TYPE_RESPONSE, HEARTBEAT

LATE = 0.1  # how late after its due time a timer may fire


def assert_on_time(at: float, due: float) -> None:
    assert due <= at <= due + LATE, f"due at {due:.3f}, happened at {at:.3f}"


# -- in-flight timeout ----------------------------------------------------------------------


async def test_in_flight_timeout_redelivers_with_attempts_2_after_msg_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with memory_nsqd(msg_timeout=10.0) as server:
        consumer = await server.consumer("t", "c")
        await consumer.pub("t", b"slow")
        first = await consumer.read_message()
        again = await consumer.read_message()
        assert_on_time(again.received_at, first.received_at + 10.0)
        assert (again.id, again.attempts, again.body) == (first.id, 2, b"slow")
        assert again.timestamp == first.timestamp
        assert server.channel("t", "c").timeout_count == 1
        assert server.channel("t", "c").requeue_count == 0


async def test_a_clients_msg_timeout_overrides_the_default(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with memory_nsqd(msg_timeout=60.0) as server:
        consumer = await server.consumer("t", "c", msg_timeout=2000)
        await consumer.pub("t", b"x")
        first = await consumer.read_message()
        again = await consumer.read_message()
        assert_on_time(again.received_at, first.received_at + 2.0)
        assert again.attempts == 2


async def test_fin_before_the_timeout_prevents_redelivery(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with memory_nsqd(msg_timeout=10.0) as server:
        consumer = await server.consumer("t", "c")
        await consumer.pub("t", b"x")
        msg = await consumer.read_message()
        await trio.sleep(9.9)
        await consumer.fin(msg.id)
        await trio.sleep(20.0)
        assert await consumer.sync() == []
        assert server.channel("t", "c").timeout_count == 0


async def test_a_timed_out_message_can_no_longer_be_finished_by_the_old_delivery(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with memory_nsqd(msg_timeout=10.0) as server:
        first_consumer = await server.consumer("t", "c")
        await first_consumer.pub("t", b"x")
        msg = await first_consumer.read_message()
        await first_consumer.rdy(0)
        other = await server.consumer("t", "c")
        redelivered = await other.read_message()
        assert redelivered.attempts == 2
        await first_consumer.fin(msg.id)
        assert await first_consumer.read_error() == (
            b"E_FIN_FAILED FIN %s failed client does not own message" % msg.id
        )


async def test_touch_extends_the_deadline_by_msg_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with memory_nsqd(msg_timeout=10.0) as server:
        consumer = await server.consumer("t", "c")
        await consumer.pub("t", b"x")
        first = await consumer.read_message()
        await trio.sleep(8.0)
        await consumer.touch(first.id)
        again = await consumer.read_message()
        assert_on_time(again.received_at, first.received_at + 18.0)
        assert again.attempts == 2


async def test_touch_cannot_extend_past_delivery_plus_max_msg_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with memory_nsqd(msg_timeout=10.0, max_msg_timeout=15.0) as server:
        consumer = await server.consumer("t", "c")
        await consumer.pub("t", b"x")
        first = await consumer.read_message()
        for _ in range(3):
            await trio.sleep(4.0)
            await consumer.touch(first.id)
        again = await consumer.read_message()
        assert_on_time(again.received_at, first.received_at + 15.0)


async def test_disconnect_leaves_in_flight_messages_to_time_out(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """2.8: a consumer's in-flight messages are not requeued when it goes away."""
    async with memory_nsqd(msg_timeout=30.0) as server:
        leaving = await server.consumer("t", "c", rdy=5)
        await leaving.mpub("t", [b"a", b"b"])
        held = await leaving.read_messages(2)
        staying = await server.consumer("t", "c", rdy=5)
        await leaving.aclose()
        redelivered = await staying.read_messages(2)
        for msg in redelivered:
            assert_on_time(msg.received_at, held[0].received_at + 30.0)
            assert msg.attempts == 2
        assert {m.id for m in redelivered} == {m.id for m in held}


# -- REQ and DPUB ---------------------------------------------------------------------------


async def test_req_with_delay_redelivers_with_attempts_2_after_the_delay(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with memory_nsqd() as server:
        consumer = await server.consumer("t", "c")
        await consumer.pub("t", b"later")
        first = await consumer.read_message()
        await consumer.req(first.id, 5000)
        requeued_at = trio.current_time()
        again = await consumer.read_message()
        assert_on_time(again.received_at, requeued_at + 5.0)
        assert (again.id, again.attempts) == (first.id, 2)
        assert server.channel("t", "c").requeue_count == 1


async def test_req_delay_is_clamped_to_max_req_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with memory_nsqd(max_req_timeout=10.0) as server:
        consumer = await server.consumer("t", "c")
        await consumer.pub("t", b"x")
        first = await consumer.read_message()
        await consumer.req(first.id, 3_600_000)
        requeued_at = trio.current_time()
        again = await consumer.read_message()
        assert_on_time(again.received_at, requeued_at + 10.0)


async def test_dpub_delivers_after_its_delay(autojump_clock: trio.testing.MockClock) -> None:
    async with memory_nsqd() as server:
        consumer = await server.consumer("t", "c")
        await consumer.dpub("t", 3000, b"deferred")
        published_at = trio.current_time()
        await consumer.pub("t", b"now")
        now = await consumer.read_message()
        await consumer.fin(now.id)
        deferred = await consumer.read_message()
        assert now.body == b"now"
        assert deferred.body == b"deferred"
        assert_on_time(deferred.received_at, published_at + 3.0)
        assert deferred.attempts == 1


async def test_dpub_to_a_topic_without_channels_keeps_its_delay(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with memory_nsqd() as server:
        producer = await server.connect()
        await producer.dpub("t", 5000, b"deferred")
        published_at = trio.current_time()
        await trio.sleep(1.0)
        consumer = await server.consumer("t", "c")
        msg = await consumer.read_message()
        assert_on_time(msg.received_at, published_at + 5.0)


async def test_a_channel_created_a_moment_ago_fires_its_timers_on_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """B.12: Go scans a new channel's timers only after up to 5 s; pnsq does from the start."""
    async with memory_nsqd(msg_timeout=60.0) as server:
        producer = await server.connect()
        await producer.pub("busy", b"x")  # an older channel with its own timers
        old = await server.consumer("busy", "c", msg_timeout=30000)
        await old.read_message()
        await trio.sleep(0.5)
        consumer = await server.consumer("t", "new", msg_timeout=1000)
        await consumer.dpub("t", 200, b"soon")
        published_at = trio.current_time()
        msg = await consumer.read_message()
        assert_on_time(msg.received_at, published_at + 0.2)
        again = await consumer.read_message()
        assert_on_time(again.received_at, msg.received_at + 1.0)


# -- heartbeats -----------------------------------------------------------------------------


async def test_heartbeats_are_sent_every_interval(autojump_clock: trio.testing.MockClock) -> None:
    async with memory_nsqd() as server:
        client = await server.connect(heartbeat_interval=2000)
        start = trio.current_time()
        for i in range(1, 4):
            frame = await client.read_frame(skip_heartbeats=False)
            assert frame == (FRAME_TYPE_RESPONSE, HEARTBEAT)
            assert_on_time(trio.current_time(), start + 2.0 * i)


async def test_default_heartbeat_interval_is_half_the_client_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with memory_nsqd(client_timeout=20.0) as server:
        client = await server.connect()
        start = trio.current_time()
        assert await client.read_frame(skip_heartbeats=False) == (FRAME_TYPE_RESPONSE, HEARTBEAT)
        assert_on_time(trio.current_time(), start + 10.0)


async def test_a_client_answering_heartbeats_stays_connected(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with memory_nsqd() as server:
        consumer = await server.consumer("t", "c", heartbeat_interval=1000)
        for _ in range(10):  # each heartbeat read is answered with NOP, and nothing else is sent
            frame = await consumer.read_frame(skip_heartbeats=False)
            assert frame == (FRAME_TYPE_RESPONSE, HEARTBEAT)
        await consumer.pub("t", b"still here")
        assert (await consumer.read_message()).body == b"still here"


async def test_a_silent_client_is_closed_two_intervals_after_its_last_command(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with memory_nsqd() as server:
        client = await server.connect(heartbeat_interval=1000)
        client.reply_to_heartbeats = False
        await trio.sleep(1.5)
        await client.nop()
        last_command = trio.current_time()
        await client.expect_closed()
        assert_on_time(trio.current_time(), last_command + 2.0)
