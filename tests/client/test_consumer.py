"""Consumer against real pnsq nsqds: delivery, RDY, backoff, give-up, sync handlers, codecs,
middleware, graceful close and discovery through real nsqlookupds."""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import anyio
import pytest
import trio
from client_helpers import MakeNSQD, lookupd_http, producer_count, tcp, wait_until
from lookup_helpers import MakeLookupd
from threaded_nsqd import ThreadedLookupd, ThreadedNSQD

from pnsq.client import (
    JSON,
    MSGPACK,
    Consumer,
    Message,
    Metrics,
    Producer,
    decoding,
)
from pnsq.nsqd.nsqd import NSQD

N = 20_000


async def publish_spread(addresses: list[str], count: int) -> None:
    """Bodies b"0".."count-1", spread over the nsqds in MPUB batches of 200."""
    for i, address in enumerate(addresses):
        mine = [b"%d" % n for n in range(i, count, len(addresses))]
        async with Producer(address) as p:
            for start in range(0, len(mine), 200):
                await p.multi_publish("orders", mine[start : start + 200])


async def consume_exactly_once(
    nsqd_addresses: list[str], lookupd_address: str, registered: Callable[[], int]
) -> collections.Counter[bytes]:
    """Publish N messages over the nsqds, wait until ``registered()`` (how many nsqds the lookupd
    knows for the topic) is all of them, and consume them found through the lookupd alone."""
    seen: collections.Counter[bytes] = collections.Counter()

    async def handle(message: Message) -> None:
        seen[message.body] += 1

    await publish_spread(nsqd_addresses, N)
    await wait_until(lambda: registered() == len(nsqd_addresses))
    consumer = Consumer(
        "orders", "billing", handle, lookupd_http_addresses=[lookupd_address], max_in_flight=200
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(consumer.run)
        await wait_until(lambda: consumer.stats().finished >= N, 60)
        assert len(consumer.connections) == len(nsqd_addresses)
        await consumer.close()
    return seen


async def test_20000_messages_over_3_nsqds_found_by_lookupd_are_delivered_exactly_once_under_trio(
    make_nsqd: MakeNSQD, make_lookupd: MakeLookupd
) -> None:
    lookupd = await make_lookupd()
    nsqds = [await make_nsqd(nsqlookupd_tcp_addresses=(tcp(lookupd),)) for _ in range(3)]
    seen = await consume_exactly_once(
        [tcp(n) for n in nsqds], lookupd_http(lookupd), lambda: producer_count(lookupd, "orders")
    )
    assert len(seen) == N
    assert set(seen.values()) == {1}
    for nsqd in nsqds:
        assert billing_depth_and_in_flight(nsqd) == (0, 0)


def test_20000_messages_over_3_nsqds_found_by_lookupd_are_delivered_exactly_once_under_asyncio(
    threaded_lookupd: ThreadedLookupd, threaded_nsqds: Callable[..., list[ThreadedNSQD]]
) -> None:
    servers = threaded_nsqds(  # lookupd rejects an nsqd without HTTP (http_port 0), like NSQ
        3, http_address="127.0.0.1:0", nsqlookupd_tcp_addresses=(threaded_lookupd.tcp,)
    )
    seen = anyio.run(
        consume_exactly_once,
        [s.address for s in servers],
        threaded_lookupd.http,
        lambda: threaded_lookupd.inspect(lambda lookupd: producer_count(lookupd, "orders")),
        backend="asyncio",
    )
    assert len(seen) == N
    assert set(seen.values()) == {1}
    for server in servers:
        assert server.inspect(billing_depth_and_in_flight) == (0, 0)


def billing_depth_and_in_flight(nsqd: NSQD) -> tuple[int, int]:
    channel = nsqd.topics["orders"].channels["billing"]
    return channel.depth(), len(channel.in_flight)


async def test_rdy_rotates_over_5_connections_with_max_in_flight_2(make_nsqd: MakeNSQD) -> None:
    nsqds = [await make_nsqd() for _ in range(5)]
    for nsqd in nsqds:
        async with Producer(tcp(nsqd)) as p:
            await p.multi_publish("orders", [tcp(nsqd).encode()] * 3)
    by_nsqd: collections.Counter[bytes] = collections.Counter()
    max_total_rdy = 0

    async def handle(message: Message) -> None:
        nonlocal max_total_rdy
        by_nsqd[message.body] += 1
        max_total_rdy = max(max_total_rdy, consumer.planner.total_rdy())

    consumer = Consumer(
        "orders",
        "c",
        handle,
        nsqd_tcp_addresses=[tcp(n) for n in nsqds],
        max_in_flight=2,
        low_rdy_idle_timeout=0.05,
        rdy_redistribute_interval=0.05,
    )
    async with consumer:
        await wait_until(lambda: sum(by_nsqd.values()) == 15)
        assert consumer.planner.total_rdy() <= 2
    assert len(by_nsqd) == 5
    assert set(by_nsqd.values()) == {3}
    assert max_total_rdy <= 2


async def test_failures_back_off_and_max_attempts_gives_up_to_a_dead_letter_topic(
    nsqd: NSQD,
) -> None:
    attempts: list[int] = []
    backoff_levels: list[int] = []

    async def handle(message: Message) -> None:
        attempts.append(message.attempts)
        backoff_levels.append(consumer.planner.backoff_level)
        raise RuntimeError("cannot handle")

    async with Producer(tcp(nsqd)) as dead_letters:

        async def give_up(message: Message) -> None:
            await dead_letters.publish("orders_dead", message.body)

        consumer = Consumer(
            "orders",
            "c",
            handle,
            nsqd_tcp_addresses=[tcp(nsqd)],
            max_in_flight=10,
            max_attempts=3,
            on_give_up=give_up,
            requeue_delay=0.0,
            backoff_multiplier=0.05,
        )
        async with Producer(tcp(nsqd)) as p:
            await p.publish("orders", b"poison")
        async with consumer:
            await wait_until(lambda: "orders_dead" in nsqd.topics)
            await wait_until(lambda: consumer.stats().finished == 1)
    assert attempts == [1, 2, 3]
    assert backoff_levels[1:] == [1, 2]  # each failure raised the level (RDY 1 probes between)
    assert consumer.stats().backoff_level == 2  # the give-up FIN was one success: 3 -> 2
    assert nsqd.topics["orders_dead"].message_count == 1
    assert nsqd.topics["orders"].channels["c"].depth() == 0


async def test_plain_def_handlers_run_in_threads_without_blocking_the_loop(nsqd: NSQD) -> None:
    import threading
    import time

    threads: set[int] = set()

    def handle(message: Message) -> None:
        threads.add(threading.get_ident())
        time.sleep(0.05)  # blocking work
        if message.body == b"touch":
            message.touch()

    async with Producer(tcp(nsqd)) as p:
        await p.multi_publish("t", [b"x"] * 19 + [b"touch"])
    consumer = Consumer("t", "c", handle, nsqd_tcp_addresses=[tcp(nsqd)], max_in_flight=20)
    async with consumer:
        with trio.fail_after(5):  # 20 x 50 ms serially would be 1 s; concurrently far less
            await wait_until(lambda: consumer.stats().finished == 20)
    assert threading.get_ident() not in threads
    assert len(threads) > 1


@pytest.mark.parametrize("codec", [JSON, MSGPACK])
async def test_codecs_round_trip_values_through_nsqd(nsqd: NSQD, codec: Any) -> None:
    got: list[Any] = []
    metrics = Metrics()
    order: list[str] = []

    async def outer(message: Message, handler: Any) -> None:
        order.append("outer-in")
        await handler(message)
        order.append("outer-out")

    async def handle(message: Message) -> None:
        order.append("handler")
        got.append(message.data)

    async with Producer(tcp(nsqd), codec=codec) as p:
        await p.publish("t", {"user": 7, "tags": ["a", "b"]})
    consumer = Consumer(
        "t",
        "c",
        handle,
        nsqd_tcp_addresses=[tcp(nsqd)],
        middleware=[outer, metrics, decoding(codec)],
    )
    async with consumer:
        await wait_until(lambda: got)
    assert got == [{"user": 7, "tags": ["a", "b"]}]
    assert order == ["outer-in", "handler", "outer-out"]
    assert metrics.handled == 1
    assert metrics.failed == 0


async def test_close_waits_for_in_flight_handlers_and_finishes_them(nsqd: NSQD) -> None:
    started, release = trio.Event(), trio.Event()
    done: list[bytes] = []

    async def handle(message: Message) -> None:
        started.set()
        await release.wait()
        done.append(message.body)

    async with Producer(tcp(nsqd)) as p:
        await p.publish("t", b"slow")
    consumer = Consumer("t", "c", handle, nsqd_tcp_addresses=[tcp(nsqd)])
    with trio.fail_after(10):
        async with trio.open_nursery() as n:
            n.start_soon(consumer.run)
            await started.wait()
            n.start_soon(consumer.close)
            await trio.sleep(0.05)
            assert not done  # close is waiting for the handler
            release.set()
    assert done == [b"slow"]
    channel = nsqd.topics["t"].channels["c"]
    await wait_until(lambda: not channel.in_flight and channel.depth() == 0)


async def test_auto_touch_keeps_a_long_handler_s_message_in_flight(make_nsqd: MakeNSQD) -> None:
    nsqd = await make_nsqd(msg_timeout=1.0)
    from pnsq.client import ConnectionConfig

    attempts: list[int] = []

    async def handle(message: Message) -> None:
        attempts.append(message.attempts)
        await anyio.sleep(1.6)  # longer than msg_timeout

    async with Producer(tcp(nsqd)) as p:
        await p.publish("t", b"long")
    consumer = Consumer(
        "t",
        "c",
        handle,
        nsqd_tcp_addresses=[tcp(nsqd)],
        auto_touch=True,
        config=ConnectionConfig(msg_timeout=1.0),
    )
    async with consumer:
        await wait_until(lambda: consumer.stats().finished == 1)
    assert attempts == [1]
    assert nsqd.topics["t"].channels["c"].timeout_count == 0


async def test_lookupd_discovery_connects_to_new_producers_and_stops_dialling_gone_ones(
    make_nsqd: MakeNSQD, make_lookupd: MakeLookupd, http: Any
) -> None:
    lookupd = await make_lookupd()
    a, b = [await make_nsqd(nsqlookupd_tcp_addresses=(tcp(lookupd),)) for _ in range(2)]
    async with Producer(tcp(a)) as p:
        await p.publish("t", b"from a")
    await wait_until(lambda: producer_count(lookupd, "t") == 1)
    got: list[bytes] = []

    async def handle(message: Message) -> None:
        got.append(message.body)

    consumer = Consumer(
        "t",
        "c",
        handle,
        lookupd_http_addresses=[lookupd_http(lookupd)],
        lookupd_poll_interval=0.1,
        max_in_flight=10,  # RDY for every connection, none waits for a redistribution
    )
    async with consumer:
        await wait_until(lambda: got == [b"from a"])
        assert [c.address for c in consumer.connections] == [a.tcp_address]
        # b gets the topic: it registers it, and the consumer's next poll finds b
        async with Producer(tcp(b)) as p:
            await p.publish("t", b"from b")
        await wait_until(lambda: len(consumer.connections) == 2)
        await wait_until(lambda: got == [b"from a", b"from b"])
        # a leaves the lookupd (it stays up, as a draining nsqd does): the live connection to a
        # keeps delivering (go-nsq's behaviour), but once it closes a is not dialled again
        response = await http(a.http_address, "PUT", "/config/nsqlookupd_tcp_addresses", b"[]")
        assert response.status == 200
        await wait_until(lambda: producer_count(lookupd, "t") == 1)
        await wait_until(lambda: a.tcp_address not in consumer._connectors)
        async with Producer(tcp(a)) as p:
            await p.publish("t", b"a again")
        await wait_until(lambda: got[-1:] == [b"a again"])
        response = await http(a.http_address, "POST", "/channel/delete?topic=t&channel=c")
        assert response.status == 200
        await wait_until(lambda: [c.address for c in consumer.connections] == [b.tcp_address])
        await wait_until(lambda: a.tcp_address not in consumer._serving)
        assert a.tcp_address not in consumer._connectors


async def test_consumer_merges_the_producers_of_two_lookupds(
    make_nsqd: MakeNSQD, make_lookupd: MakeLookupd
) -> None:
    lookupds = [await make_lookupd(), await make_lookupd()]
    nsqds = [await make_nsqd(nsqlookupd_tcp_addresses=(tcp(lookupd),)) for lookupd in lookupds]
    for nsqd in nsqds:
        async with Producer(tcp(nsqd)) as p:
            await p.publish("t", tcp(nsqd).encode())
    for lookupd in lookupds:
        await wait_until(lambda: producer_count(lookupd, "t") == 1)  # noqa: B023 - awaited now
    got: list[bytes] = []

    async def handle(message: Message) -> None:
        got.append(message.body)

    consumer = Consumer(
        "t",
        "c",
        handle,
        lookupd_http_addresses=[lookupd_http(lookupd) for lookupd in lookupds],
        max_in_flight=10,
    )
    async with consumer:
        await wait_until(lambda: len(got) == 2)
        assert {c.address for c in consumer.connections} == {n.tcp_address for n in nsqds}
    assert sorted(got) == sorted(tcp(n).encode() for n in nsqds)


async def test_disable_auto_response_leaves_the_message_in_flight_until_the_handler_finishes_it(
    make_nsqd: MakeNSQD,
) -> None:
    nsqd = await make_nsqd()
    async with Producer(tcp(nsqd)) as p:
        await p.multi_publish("orders", [b"a", b"b", b"c"])
    held: list[Message] = []

    async def hold(message: Message) -> None:
        message.disable_auto_response()
        held.append(message)
        if message.body == b"c":
            raise RuntimeError("a failing handler does not REQ a message it took over either")

    consumer = Consumer("orders", "billing", hold, nsqd_tcp_addresses=[tcp(nsqd)], max_in_flight=10)
    async with anyio.create_task_group() as tg:
        tg.start_soon(consumer.run)
        await wait_until(lambda: len(held) == 3)
        await wait_until(lambda: billing_depth_and_in_flight(nsqd) == (0, 3))
        assert consumer.stats().finished == consumer.stats().requeued == 0
        held[0].finish()
        held[1].finish()
        held[2].requeue(0, backoff=False)
        await wait_until(lambda: len(held) == 4)  # the requeued one comes back
        assert held[3].body == b"c"
        assert held[3].attempts == 2
        held[3].finish()
        await wait_until(lambda: billing_depth_and_in_flight(nsqd) == (0, 0))
        await consumer.close()
