"""Drain mode: refusals, finishing once consumers have taken everything, the timeout, topic drains.

The first part runs in virtual time: an nsqd without listeners, each client a ``ConnectionV2``
over an in-memory stream pair, the timer and drain tasks beside them, under
``MockClock(autojump_threshold=0)``; ``stop`` is a recorder, so when the drain ends is seen
exactly. The second part runs nsqds on real sockets (HTTP answers, lookupd, ``serve()``
returning, what a restart delivers).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from lookup_helpers import tcp, until
from memory_nsqd import memory_nsqd
from v2client import V2Client, open_consumer

from pnsq.lookupd import Lookupd
from pnsq.nsqd.drain import CHECK_INTERVAL
from pnsq.nsqd.nsqd import NSQD
from pnsq.nsqd.options import Options
from pnsq.wire import encode_dpub, encode_mpub, encode_pub, encode_sub

# -- in virtual time ----------------------------------------------------------------------------


async def test_publishes_are_refused_over_tcp_while_draining(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with memory_nsqd(drain=True) as server:
        await server.consumer("t", "c", rdy=0)  # keeps the drain from ending at once
        producer = await server.connect()
        await producer.pub("t", b"before")
        server.nsqd.drain.start()
        for command, name in [
            (encode_pub("t", b"x"), b"PUB"),
            (encode_mpub("t", [b"x", b"y"]), b"MPUB"),
            (encode_dpub("t", 100, b"x"), b"DPUB"),
            (encode_pub("new_topic", b"x"), b"PUB"),
        ]:
            client = await server.connect()
            await client.send(command)
            error = await client.read_error()
            assert error == b"E_%s_FAILED %s failed nsqd draining" % (name, name)
            await client.expect_closed()
        assert "new_topic" not in server.nsqd.topics
        assert server.nsqd.topics["t"].channels["c"].depth() == 1  # only what came before


async def test_new_subscriptions_are_refused_while_draining(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with memory_nsqd(drain=True) as server:
        first = await server.consumer("t", "c", rdy=0)
        producer = await server.connect()
        await producer.pub("t", b"m")
        server.nsqd.drain.start()
        late = await server.connect()
        await late.send(encode_sub("t", "c"))
        assert await late.read_error() == b"E_SUB_FAILED SUB failed nsqd draining"
        await late.expect_closed()
        await first.rdy(1)  # the consumer already there still receives
        assert (await first.read_message()).body == b"m"


async def test_drain_stops_nsqd_once_consumers_have_finished_everything(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with memory_nsqd(drain=True, drain_timeout=600.0) as server:
        consumer = await server.consumer("t", "c", rdy=0)
        producer = await server.connect()
        await producer.mpub("t", [b"a", b"b", b"c"])
        await producer.dpub("t", 20_000, b"later")
        server.nsqd.drain.start()
        await consumer.rdy(10)
        messages = await consumer.read_messages(3)
        for msg in messages[:2]:
            await consumer.fin(msg.id)
        await consumer.req(messages[2].id, 5_000)  # deferred: still to deliver
        await trio.sleep(10)
        assert server.stopped_at is None
        again = await consumer.read_message()
        await consumer.fin(again.id)
        assert server.stopped_at is None  # "later" is deferred until t+20s
        last = await consumer.read_message()
        assert last.body == b"later"
        finished = trio.current_time()
        await consumer.fin(last.id)
        await server.stopped.wait()
        assert server.stopped_at is not None
        assert server.stopped_at - finished <= CHECK_INTERVAL + 0.01


async def test_drain_timeout_stops_nsqd_and_logs_what_is_left_per_channel(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with memory_nsqd(drain=True, drain_timeout=30.0) as server:
        consumer = await server.consumer("t", "c", rdy=0)
        await server.consumer("t", "other", rdy=0)
        producer = await server.connect()
        await producer.mpub("t", [b"a", b"b", b"c"])
        await consumer.rdy(1)
        await consumer.read_message()  # held in flight, never finished
        started = trio.current_time()
        with caplog.at_level(logging.INFO, logger="pnsq.nsqd"):
            server.nsqd.drain.start()
            await server.stopped.wait()
        assert server.stopped_at is not None
        assert 30.0 <= server.stopped_at - started <= 30.0 + CHECK_INTERVAL + 0.01
        assert any(
            "DRAIN: timed out" in m and "t:c: 3 messages" in m and "t:other: 3 messages" in m
            for m in caplog.messages
        )


async def test_what_no_consumer_can_take_does_not_hold_the_drain(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A topic without channels, a channel without consumers: kept on disk, not waited for."""
    async with memory_nsqd(drain=True, drain_timeout=600.0) as server:
        producer = await server.connect()
        await producer.mpub("lonely", [b"a", b"b"])
        server.nsqd.get_topic("t").get_channel("abandoned", trio.current_time())
        await producer.pub("t", b"x")
        started = trio.current_time()
        with caplog.at_level(logging.INFO, logger="pnsq.nsqd"):
            server.nsqd.drain.start()
            await server.stopped.wait()
        assert server.stopped_at is not None
        assert server.stopped_at - started < 1
        assert any(
            "DRAIN: done" in m and "lonely: 2 messages" in m and "t:abandoned: 1 messages" in m
            for m in caplog.messages
        )


async def test_a_drained_topic_refuses_publishes_and_is_deleted_once_empty(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with memory_nsqd(drain=True) as server:
        consumer = await server.consumer("t", "c", rdy=0)
        producer = await server.connect()
        await producer.mpub("t", [b"a", b"b"])
        topic = server.nsqd.topics["t"]
        server.nsqd.drain.drain_topic(topic)
        refused = await server.connect()
        await refused.send(encode_pub("t", b"x"))
        assert await refused.read_error() == b"E_PUB_FAILED PUB failed topic draining"
        await producer.pub("other", b"fine")  # the node itself takes publishes
        await consumer.rdy(2)
        for msg in await consumer.read_messages(2):
            assert "t" in server.nsqd.topics
            await consumer.fin(msg.id)
        await consumer.expect_closed()  # the topic's deletion closes its consumers
        assert "t" not in server.nsqd.topics
        assert "other" in server.nsqd.topics
        assert server.stopped_at is None
        assert not server.nsqd.draining


# -- on real sockets ------------------------------------------------------------------------------


async def test_http_refuses_publishes_and_reports_draining(make_nsqd: Any, http: Any) -> None:
    nsqd = await make_nsqd()
    address = nsqd.tcp_address
    consumer = await open_consumer(address, "t", "c", rdy=0)  # so the drain does not end at once
    assert (await http(nsqd.http_address, "POST", "/pub?topic=t", b"m")).status == 200
    assert (await http(nsqd.http_address, "GET", "/ping")).body == b"OK"

    response = await http(nsqd.http_address, "PUT", "/state/drain")
    assert response.status == 200

    for target, body in [
        ("/pub?topic=t", b"x"),
        ("/mpub?topic=t", b"x\ny"),
        ("/pub?topic=n", b"x"),
    ]:
        response = await http(nsqd.http_address, "POST", target, body)
        assert response.status == 503
        assert response.headers["content-type"] == "application/json; charset=utf-8"
        assert response.json() == {"message": "DRAINING"}
    assert (await http(nsqd.http_address, "POST", "/topic/create?topic=n")).status == 503
    assert "n" not in nsqd.topics
    ping = await http(nsqd.http_address, "GET", "/ping")
    assert (ping.status, ping.body) == (503, b"NOK - draining")
    assert (await http(nsqd.http_address, "GET", "/info")).json()["state"] == "draining"
    stats = (await http(nsqd.http_address, "GET", "/stats?format=json")).json()
    assert (stats["health"], stats["state"]) == ("OK", "draining")
    assert b"State: draining" in (await http(nsqd.http_address, "GET", "/stats")).body
    assert (await http(nsqd.http_address, "PUT", "/state/drain")).status == 200  # again: no-op
    await consumer.aclose()


async def test_topic_drain_over_http(make_nsqd: Any, http: Any) -> None:
    nsqd = await make_nsqd()
    assert (await http(nsqd.http_address, "POST", "/topic/drain?topic=t")).status == 404
    missing = await http(nsqd.http_address, "POST", "/topic/drain")
    assert (missing.status, missing.json()) == (400, {"message": "MISSING_ARG_TOPIC"})
    consumer = await open_consumer(nsqd.tcp_address, "t", "c", rdy=0)
    assert (await http(nsqd.http_address, "POST", "/pub?topic=t", b"m")).status == 200
    assert (await http(nsqd.http_address, "POST", "/topic/drain?topic=t")).status == 200
    response = await http(nsqd.http_address, "POST", "/pub?topic=t", b"x")
    assert (response.status, response.json()) == (503, {"message": "DRAINING"})
    await consumer.rdy(1)
    await consumer.fin((await consumer.read_message()).id)
    await until(lambda: "t" not in nsqd.topics)
    assert (await http(nsqd.http_address, "GET", "/ping")).status == 200


@asynccontextmanager
async def serving(options: Options) -> AsyncIterator[NSQD]:
    """An nsqd whose ``serve()`` must return (by itself) before the block's end, within 10 s."""
    nsqd = NSQD(options)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(nsqd.serve)
            yield nsqd


def options(data_path: Path, **overrides: Any) -> Options:
    return Options(
        tcp_address="127.0.0.1:0",
        http_address="127.0.0.1:0",
        broadcast_address="127.0.0.1",
        data_path=str(data_path),
        **overrides,
    )


async def test_a_drained_node_leaves_lookupd_and_exits_once_its_consumers_are_done(
    make_lookupd: Any, tmp_path: Path, http: Any
) -> None:
    lookupd = await make_lookupd()
    async with serving(options(tmp_path, nsqlookupd_tcp_addresses=(tcp(lookupd),))) as nsqd:
        assert nsqd.tcp_address is not None
        consumer = await open_consumer(nsqd.tcp_address, "t", "c", rdy=0)
        for body in (b"a", b"b"):
            assert (await http(nsqd.http_address, "POST", "/pub?topic=t", body)).status == 200
        await until(lambda: _producers(lookupd, "t", "c"))

        assert (await http(nsqd.http_address, "PUT", "/state/drain")).status == 200
        await until(lambda: not _producers(lookupd, "t") and not _producers(lookupd, "t", "c"))
        peer, _ = next(iter(nsqd.lookup.peers.values()))
        assert peer.connected  # the link stays
        lookup = (await http(lookupd.http_address, "GET", "/lookup?topic=t")).json()
        assert lookup["producers"] == []

        await consumer.rdy(2)  # the consumer already there still receives everything
        for msg in await consumer.read_messages(2):
            await consumer.fin(msg.id)
        await consumer.expect_closed()  # nsqd shut down: serving() sees serve() return
    assert not _producers(lookupd, "t")


def _producers(lookupd: Lookupd, topic: str, channel: str | None = None) -> bool:
    db = lookupd.db
    return bool(
        db.topics.get(topic) if channel is None else db.channels.get(topic, {}).get(channel)
    )


async def test_what_the_drain_timeout_leaves_is_on_disk_and_delivered_after_restart(
    tmp_path: Path,
) -> None:
    async with serving(options(tmp_path, drain_timeout=0.3)) as nsqd:
        assert nsqd.tcp_address is not None
        consumer = await open_consumer(nsqd.tcp_address, "t", "c", rdy=1)
        producer = await V2Client.connect(nsqd.tcp_address)
        await producer.mpub("t", [b"a", b"b", b"c"])
        held = await consumer.read_message()  # in flight when the time runs out
        nsqd.drain.start()
    async with serving(options(tmp_path)) as again:
        assert again.tcp_address is not None
        consumer = await open_consumer(again.tcp_address, "t", "c", rdy=10)
        messages = await consumer.read_messages(3)
        assert sorted(m.body for m in messages) == [b"a", b"b", b"c"]
        assert held.id in {m.id for m in messages}
        await consumer.aclose()
        again.stop()


async def test_put_state_shutdown_stops_at_once_keeping_messages(tmp_path: Path, http: Any) -> None:
    async with serving(options(tmp_path)) as nsqd:
        assert (await http(nsqd.http_address, "POST", "/pub?topic=t", b"m")).status == 200
        assert (await http(nsqd.http_address, "PUT", "/state/shutdown")).status == 200
    async with serving(options(tmp_path)) as again:
        assert again.tcp_address is not None
        consumer = await open_consumer(again.tcp_address, "t", "c")
        assert (await consumer.read_message()).body == b"m"
        await consumer.aclose()
        again.stop()
