"""Producer over TCP and HTTP against a real pnsq nsqd."""

from __future__ import annotations

import pytest
import trio

from pnsq.client import JSON, Consumer, NSQConnectionError, Producer, PublishError
from pnsq.nsqd.nsqd import NSQD


def tcp(nsqd: NSQD) -> str:
    assert nsqd.tcp_address is not None
    return "{}:{}".format(*nsqd.tcp_address)


def http_url(nsqd: NSQD) -> str:
    assert nsqd.http_address is not None
    return "http://{}:{}".format(*nsqd.http_address)


def depth(nsqd: NSQD, topic: str) -> int:
    return nsqd.topics[topic].message_count if topic in nsqd.topics else 0


@pytest.mark.parametrize("scheme", ["tcp", "http"])
async def test_publish_multi_publish_and_deferred_publish_reach_the_topic(
    nsqd: NSQD, scheme: str
) -> None:
    address = tcp(nsqd) if scheme == "tcp" else http_url(nsqd)
    with trio.fail_after(10):
        async with Producer(address) as p:
            await p.publish("orders", b"one")
            await p.multi_publish("orders", [b"a", b"b", b"c"])
            await p.deferred_publish("orders", b"later", delay=30.0)
    topic = nsqd.topics["orders"]
    assert topic.message_count == 5


async def test_concurrent_publishes_on_one_connection_are_all_acknowledged(nsqd: NSQD) -> None:
    with trio.fail_after(10):
        async with Producer(tcp(nsqd)) as p, trio.open_nursery() as n:
            for i in range(200):
                n.start_soon(p.publish, "t", b"%d" % i)
    assert depth(nsqd, "t") == 200


@pytest.mark.parametrize("scheme", ["tcp", "http"])
async def test_a_refused_publish_raises_publish_error_with_nsqs_code(
    make_nsqd: object, scheme: str
) -> None:
    nsqd = await make_nsqd(max_msg_size=10)  # type: ignore[operator]
    address = tcp(nsqd) if scheme == "tcp" else http_url(nsqd)
    with trio.fail_after(10):
        async with Producer(address) as p:
            with pytest.raises(PublishError) as info:
                await p.publish("t", b"x" * 100)
            expected = "E_BAD_MESSAGE" if scheme == "tcp" else "MSG_TOO_BIG"
            assert info.value.code == expected
            await p.publish("t", b"small")  # the producer reconnects after the fatal error
    assert depth(nsqd, "t") == 1


async def test_publishing_to_nothing_raises_a_connection_error() -> None:
    with trio.fail_after(10):
        async with Producer("127.0.0.1:1") as p:
            with pytest.raises(NSQConnectionError):
                await p.publish("t", b"x")


async def test_json_codec_encodes_values(nsqd: NSQD) -> None:
    with trio.fail_after(10):
        async with Producer(tcp(nsqd), codec=JSON) as p:
            await p.publish("t", {"id": 1})
    assert depth(nsqd, "t") == 1


async def test_an_error_leaving_the_async_with_block_is_the_error_itself(make_nsqd: object) -> None:
    """Under trio a task group wraps what crosses it in an ExceptionGroup; a Producer's or
    Consumer's must not, or `except PublishError` around the block would never match."""
    nsqd = await make_nsqd(max_msg_size=10)  # type: ignore[operator]

    async def handle(message: object) -> None:
        pass

    with trio.fail_after(10):
        with pytest.raises(PublishError):
            async with Producer(tcp(nsqd)) as p:
                await p.publish("t", b"x" * 100)
        with pytest.raises(KeyError):
            async with Consumer("t", "c", handle, nsqd_tcp_addresses=[tcp(nsqd)]):
                raise KeyError("from the body")
