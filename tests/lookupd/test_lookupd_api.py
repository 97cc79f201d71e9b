"""lookupd alone: bad input on its TCP port, its HTTP errors, and ageing (a function of now)."""

from __future__ import annotations

import json
import struct
import time
from typing import Any

import pytest
import trio
from lookup_helpers import until

from pnsq.lookupd import Lookupd
from pnsq.lookupd.registration_db import Peer, RegistrationDB
from pnsq.wire.lookup import MAGIC_V1, ReplyReader

PEER = {"broadcast_address": "127.0.0.1", "tcp_port": 1, "http_port": 2, "version": "1.3.0"}
BODY = json.dumps(PEER).encode()
IDENTIFY = b"IDENTIFY\n" + struct.pack(">i", len(BODY)) + BODY


async def exchange(lookupd: Lookupd, data: bytes) -> tuple[list[bytes], bool]:
    """Send ``data``; the replies until lookupd closes (True) or goes quiet for 0.5 s (False)."""
    assert lookupd.tcp_address is not None
    replies, received = ReplyReader(), []
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream(*lookupd.tcp_address)
        async with stream:
            await stream.send_all(data)
            while True:
                with trio.move_on_after(0.5):
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        return received, True
                    replies.receive_data(chunk)
                    while (reply := replies.next_reply()) is not None:
                        received.append(reply)
                    continue
                return received, False


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", [b"E_BAD_PROTOCOL"]),
        (MAGIC_V1 + b"garbage\x00\xff\n", [b"E_INVALID invalid command garbage\x00\xff"]),
        (MAGIC_V1 + b"PING\nFOO\n", [b"OK", b"E_INVALID invalid command FOO"]),
        (MAGIC_V1 + b"REGISTER t c\n", [b"E_INVALID client must IDENTIFY"]),
        (MAGIC_V1 + IDENTIFY + b"REGISTER bad!name\n", None),
        (
            MAGIC_V1 + b"IDENTIFY\n" + struct.pack(">i", 1 << 30),
            [b"E_BAD_BODY IDENTIFY invalid body size 1073741824"],
        ),
        (MAGIC_V1 + b"x" * 100_000, [b"E_INVALID command too long"]),
    ],
)
async def test_bad_input_gets_the_nsq_error_and_only_that_connection_closes(
    lookupd: Lookupd, http: Any, data: bytes, expected: list[bytes] | None
) -> None:
    bystander, _ = await exchange(lookupd, MAGIC_V1 + IDENTIFY + b"REGISTER keep\n")
    assert len(bystander) == 2
    # a second, long-lived peer must survive the bad one
    assert lookupd.tcp_address is not None
    good = await trio.open_tcp_stream(*lookupd.tcp_address)
    async with good:
        await good.send_all(MAGIC_V1 + IDENTIFY + b"REGISTER kept\n")
        await until(lambda: "kept" in lookupd.db.topics and lookupd.db.topics["kept"])
        replies, closed = await exchange(lookupd, data)
        assert closed
        if expected is None:
            assert replies[-1] == b"E_BAD_TOPIC REGISTER topic name 'bad!name' is not valid"
        else:
            assert replies == expected
        assert lookupd.db.topics["kept"]  # the other peer is still registered
        await good.send_all(b"PING\n")
        assert (await exchange(lookupd, MAGIC_V1 + b"PING\n"))[0] == [b"OK"]
    assert (await http(lookupd.http_address, "GET", "/ping")).body == b"OK"


@pytest.mark.parametrize(
    ("method", "target", "status", "message"),
    [
        ("GET", "/lookup", 400, "MISSING_ARG_TOPIC"),
        ("GET", "/lookup?topic=never", 404, "TOPIC_NOT_FOUND"),
        ("GET", "/channels", 400, "MISSING_ARG_TOPIC"),
        ("GET", "/lookup?topic=%zz", 400, "INVALID_REQUEST"),
        ("POST", "/topic/create", 400, "MISSING_ARG_TOPIC"),
        ("POST", "/topic/create?topic=bad!", 400, "INVALID_ARG_TOPIC"),
        ("POST", "/channel/create?topic=t", 400, "MISSING_ARG_CHANNEL"),
        ("POST", "/channel/create?topic=t&channel=bad!", 400, "INVALID_ARG_CHANNEL"),
        ("POST", "/channel/delete?topic=t&channel=none", 404, "CHANNEL_NOT_FOUND"),
        ("POST", "/topic/tombstone?topic=t", 400, "MISSING_ARG_NODE"),
        ("GET", "/topic/create?topic=t", 405, "METHOD_NOT_ALLOWED"),
        ("GET", "/nope", 404, "NOT_FOUND"),
        ("GET", "/debug/nope", 404, "NOT_FOUND"),
        ("POST", "/debug", 405, "METHOD_NOT_ALLOWED"),
    ],
)
async def test_http_errors(
    lookupd: Lookupd, http: Any, method: str, target: str, status: int, message: str
) -> None:
    response = await http(lookupd.http_address, method, target)
    assert (response.status, response.json()) == (status, {"message": message})
    assert response.headers["x-nsq-content-type"] == "nsq; version=1.0"


async def test_http_administration(lookupd: Lookupd, http: Any) -> None:
    address = lookupd.http_address
    assert (await http(address, "GET", "/info")).json() == {"version": "1.3.0"}
    assert (await http(address, "POST", "/channel/create?topic=t&channel=c")).status == 200
    assert (await http(address, "GET", "/lookup?topic=t")).json() == {
        "channels": ["c"],
        "producers": [],
    }
    assert (await http(address, "POST", "/channel/delete?topic=t&channel=c")).status == 200
    assert (await http(address, "GET", "/channels?topic=t")).json() == {"channels": []}
    assert (await http(address, "POST", "/topic/delete?topic=t")).status == 200
    assert (await http(address, "GET", "/topics")).json() == {"topics": []}
    assert (await http(address, "GET", "/lookup?topic=t")).status == 404


def test_tombstones_last_their_lifetime_and_silent_producers_age_out() -> None:
    db = RegistrationDB()
    peer = Peer("127.0.0.1:5000", {"broadcast_address": "h", "http_port": 4151}, last_update=0.0)
    db.add_peer(peer)
    db.register(peer, "t", "c")
    db.tombstone("t", "h:4151", now=10.0)
    assert db.active_producers("t", 10.0, 300.0, 45.0) == []
    assert db.active_producers("t", 54.9, 300.0, 45.0) == []
    assert db.active_producers("t", 55.0, 300.0, 45.0) == [peer]
    [(_, topics, tombstones)] = db.nodes(20.0, 300.0, 45.0)
    assert (topics, tombstones) == (["t"], [True])
    # no PING for longer than the inactive timeout: hidden from /lookup and /nodes
    assert db.active_producers("t", 300.1, 300.0, 45.0) == []
    assert db.nodes(300.1, 300.0, 45.0) == []
    peer.last_update = 300.0  # a PING
    assert db.active_producers("t", 300.1, 300.0, 45.0) == [peer]


async def test_debug_dumps_the_registrations_as_nsq_does(lookupd: Lookupd, http: Any) -> None:
    """/debug: ``category:key:subkey`` to its producers; a tombstone shows on the topic only."""
    assert lookupd.tcp_address is not None
    address = lookupd.http_address
    assert (await http(address, "POST", "/topic/create?topic=empty")).status == 200
    before = time.time_ns()
    peer = await trio.open_tcp_stream(*lookupd.tcp_address)
    async with peer:
        await peer.send_all(MAGIC_V1 + IDENTIFY + b"REGISTER t c\nREGISTER t2\n")
        await until(lambda: lookupd.db.topics.get("t2"))
        target = "/topic/tombstone?topic=t&node=127.0.0.1:2"
        assert (await http(address, "POST", target)).status == 200
        data = (await http(address, "GET", "/debug")).json()
    after = time.time_ns()
    assert sorted(data) == ["channel:t:c", "client::", "topic:t2:", "topic:t:"]
    [[client], [channel], [topic], [topic2]] = [
        data[k] for k in ("client::", "channel:t:c", "topic:t:", "topic:t2:")
    ]
    assert client["id"].startswith("127.0.0.1:")
    expected = {**{k: PEER[k] for k in PEER}, "hostname": client["hostname"], "id": client["id"]}
    for producer in (client, channel, topic, topic2):
        assert {k: producer[k] for k in expected} == expected
        assert before <= producer["last_update"] <= after
    assert topic["tombstoned"] is True
    assert before <= topic["tombstoned_at"] <= after
    # Go's zero time, as NSQ prints it for a producer never tombstoned
    for producer in (client, channel, topic2):
        assert (producer["tombstoned"], producer["tombstoned_at"]) == (False, -6795364578871345152)
    # the peer went away: only what outlives it (non-ephemeral names, no producers) is left out
    await until(lambda: not lookupd.db.peers)
    assert (await http(address, "GET", "/debug")).json() == {}
