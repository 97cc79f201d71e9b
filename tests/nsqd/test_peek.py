"""GET /channel/peek: the next waiting messages of a channel, without consuming them.

The admin's channel page shows them (NSQ #1482: "what is waiting in this queue?"); a peek must
leave depth, order and attempts exactly as they were.
"""

from __future__ import annotations

from typing import Any

import pytest
from v2client import open_consumer

from pnsq.nsqd.nsqd import NSQD


@pytest.fixture
async def nsqd(make_nsqd: Any) -> NSQD:
    started: NSQD = await make_nsqd()
    return started


async def _publish(http: Any, nsqd: NSQD, bodies: list[bytes]) -> None:
    response = await http(nsqd.http_address, "POST", "/mpub?topic=t", b"\n".join(bodies))
    assert response.status == 200


async def _create(http: Any, nsqd: NSQD) -> None:
    assert (await http(nsqd.http_address, "POST", "/topic/create?topic=t")).status == 200
    assert (
        await http(nsqd.http_address, "POST", "/channel/create?topic=t&channel=c")
    ).status == 200


async def test_peek_shows_next_messages_without_changing_depth_or_order(
    nsqd: NSQD, http: Any
) -> None:
    await _create(http, nsqd)
    bodies = [b"msg %d" % i for i in range(15)]
    await _publish(http, nsqd, bodies)

    response = await http(nsqd.http_address, "GET", "/channel/peek?topic=t&channel=c&n=3")
    assert response.status == 200
    peeked = response.json()["messages"]
    assert [m["body"] for m in peeked] == ["msg 0", "msg 1", "msg 2"]
    assert all(m["attempts"] == 0 and m["body_size"] == 5 for m in peeked)
    assert all(len(m["id"]) == 16 and m["timestamp"] > 0 for m in peeked)

    default = (await http(nsqd.http_address, "GET", "/channel/peek?topic=t&channel=c")).json()
    assert len(default["messages"]) == 10  # n defaults to 10

    stats = (await http(nsqd.http_address, "GET", "/stats?format=json&topic=t")).json()
    assert stats["topics"][0]["channels"][0]["depth"] == 15
    assert nsqd.tcp_address is not None
    async with await open_consumer(nsqd.tcp_address, "t", "c", rdy=3) as consumer:
        delivered = await consumer.read_messages(3)
    assert [m.body for m in delivered] == [b"msg 0", b"msg 1", b"msg 2"]
    assert [m.id.decode() for m in delivered] == [m["id"] for m in peeked]
    assert [m.attempts for m in delivered] == [1, 1, 1]


async def test_peek_previews_long_and_binary_bodies(nsqd: NSQD, http: Any) -> None:
    await _create(http, nsqd)
    for body in (b"x" * 5000, b"\xff\xfeok"):
        assert (await http(nsqd.http_address, "POST", "/pub?topic=t", body)).status == 200
    messages = (await http(nsqd.http_address, "GET", "/channel/peek?topic=t&channel=c")).json()[
        "messages"
    ]
    assert (len(messages[0]["body"]), messages[0]["body_size"]) == (1024, 5000)
    assert messages[1]["body"] == "\ufffd\ufffdok"


async def test_peek_of_an_empty_channel_is_an_empty_list(nsqd: NSQD, http: Any) -> None:
    await _create(http, nsqd)
    response = await http(nsqd.http_address, "GET", "/channel/peek?topic=t&channel=c&n=100")
    assert (response.status, response.json()) == (200, {"messages": []})


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("", 400, "MISSING_ARG_TOPIC"),
        ("topic=t", 400, "MISSING_ARG_CHANNEL"),
        ("topic=bad!&channel=c", 400, "INVALID_ARG_TOPIC"),
        ("topic=t&channel=c&n=0", 400, "INVALID_ARG_N"),
        ("topic=t&channel=c&n=101", 400, "INVALID_ARG_N"),
        ("topic=t&channel=c&n=x", 400, "INVALID_ARG_N"),
        ("topic=nope&channel=c", 404, "TOPIC_NOT_FOUND"),
        ("topic=t&channel=nope", 404, "CHANNEL_NOT_FOUND"),
    ],
)
async def test_peek_bad_input_gets_nsq_errors(
    nsqd: NSQD, http: Any, query: str, status: int, message: str
) -> None:
    await _create(http, nsqd)
    response = await http(nsqd.http_address, "GET", f"/channel/peek?{query}")
    assert (response.status, response.json()) == (status, {"message": message})
    post = await http(nsqd.http_address, "POST", "/channel/peek?topic=t&channel=c")
    assert post.status == 405
