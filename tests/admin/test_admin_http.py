"""The admin over real HTTP: its JSON API against real nsqds, every action, and its guards.

Two in-process nsqds on 127.0.0.1:0, found through ``--nsqd-http-address`` or through a real
in-process lookupd they register with. Each action is checked where it matters: in the nsqds'
own state, and in what the lookupd answers afterwards.
"""

from __future__ import annotations

import json
import logging
import socket
from typing import Any

import pytest
import trio
from lookup_helpers import knows, tcp, until
from v2client import open_consumer, wait_until

from pnsq.admin.server import AdminServer
from pnsq.lookupd import Lookupd
from pnsq.nsqd.nsqd import NSQD


def address(pair: tuple[str, int] | None) -> str:
    """``host:port`` of a bound address."""
    assert pair is not None
    return f"{pair[0]}:{pair[1]}"


JSON_HEADERS = [("Content-Type", "application/json")]


async def get(http: Any, admin: AdminServer, path: str) -> Any:
    response = await http(admin.http_address, "GET", path)
    assert response.status == 200, (path, response.body)
    return response.json()


async def post(http: Any, admin: AdminServer, path: str, body: Any, headers: Any = None) -> Any:
    data = json.dumps(body).encode()
    return await http(admin.http_address, "POST", path, data, headers or JSON_HEADERS)


async def fill(http: Any, one: NSQD, two: NSQD) -> None:
    """``orders`` on both (channel ``ship``; 3 and 2 messages), ``audit`` on the second only."""
    for nsqd, count in ((one, 3), (two, 2)):
        r = await http(nsqd.http_address, "POST", "/topic/create?topic=orders")
        assert r.status == 200
        await http(nsqd.http_address, "POST", "/channel/create?topic=orders&channel=ship")
        body = b"\n".join(b"order %d" % i for i in range(count))
        assert (await http(nsqd.http_address, "POST", "/mpub?topic=orders", body)).status == 200
    assert (await http(two.http_address, "POST", "/pub?topic=audit", b"x")).status == 200


@pytest.fixture
async def nsqds(make_nsqd: Any, http: Any) -> list[NSQD]:
    """Two nsqds filled by ``fill``."""
    one, two = await make_nsqd(), await make_nsqd()
    await fill(http, one, two)
    return [one, two]


@pytest.fixture
async def registered(make_lookupd: Any, make_nsqd: Any, http: Any) -> tuple[Lookupd, list[NSQD]]:
    """A real lookupd and two nsqds filled by ``fill``, registered with it (and known to it)."""
    lookupd = await make_lookupd()
    one, two = [await make_nsqd(nsqlookupd_tcp_addresses=(tcp(lookupd),)) for _ in range(2)]
    await fill(http, one, two)
    await until(lambda: knows(lookupd, one) and knows(lookupd, two))
    return lookupd, [one, two]


@pytest.fixture
async def admin(nsqds: list[NSQD], make_admin: Any) -> AdminServer:
    server: AdminServer = await make_admin(
        nsqd_http_addresses=tuple(address(n.http_address) for n in nsqds)
    )
    return server


# -- reading ----------------------------------------------------------------------------------


async def test_topics_list_totals_over_both_nodes(admin: AdminServer, http: Any) -> None:
    body = await get(http, admin, "/api/topics")
    assert body["topics"] == ["audit", "orders"]
    orders = next(t for t in body["topic_stats"] if t["topic_name"] == "orders")
    assert (orders["total_depth"], orders["message_count"], orders["node_count"]) == (5, 5, 2)
    assert body["message"] == ""


async def test_topic_and_channel_pages_data(
    admin: AdminServer, nsqds: list[NSQD], http: Any
) -> None:
    topic = await get(http, admin, "/api/topics/orders")
    assert (topic["node"], topic["message_count"]) == ("*", 5)
    assert sorted(n["message_count"] for n in topic["nodes"]) == [2, 3]
    assert [c["channel_name"] for c in topic["channels"]] == ["ship"]
    assert topic["channels"][0]["depth"] == 5

    assert nsqds[0].tcp_address is not None
    consumer = await open_consumer(nsqds[0].tcp_address, "orders", "ship", rdy=2)
    async with consumer:
        await consumer.read_messages(2)
        channel = await get(http, admin, "/api/topics/orders/ship")
    assert (channel["depth"], channel["in_flight_count"], channel["client_count"]) == (3, 2, 1)
    (client,) = channel["clients"]
    assert client["node"] == address(nsqds[0].http_address)
    assert (client["ready_count"], client["in_flight_count"]) == (2, 2)


async def test_missing_topic_and_channel_are_404(admin: AdminServer, http: Any) -> None:
    for path, message in (
        ("/api/topics/nope", "TOPIC_NOT_FOUND"),
        ("/api/topics/orders/nope", "CHANNEL_NOT_FOUND"),
        ("/api/nodes/127.0.0.1:1", "NODE_NOT_FOUND"),
    ):
        response = await http(admin.http_address, "GET", path)
        assert (response.status, response.json()) == (404, {"message": message})
    response = await http(admin.http_address, "GET", "/api/topics/bad!name")
    assert (response.status, response.json()) == (400, {"message": "INVALID_ARG_TOPIC"})


async def test_nodes_and_node_pages(admin: AdminServer, nsqds: list[NSQD], http: Any) -> None:
    nodes = (await get(http, admin, "/api/nodes"))["nodes"]
    assert [n["node"] for n in nodes] == [address(n.http_address) for n in nsqds]
    assert all(n["up"] and n["version"] == "1.3.0" for n in nodes)
    assert nodes[1]["tcp_port"] == nsqds[1].tcp_address[1]  # type: ignore[index]
    detail = await get(http, admin, f"/api/nodes/{nodes[1]['node']}")
    assert [t["topic_name"] for t in detail["topics"]] == ["audit", "orders"]
    assert detail["total_messages"] == 3


async def test_counter_sums_every_channel(admin: AdminServer, http: Any) -> None:
    body = await get(http, admin, "/api/counter")
    assert body["total_messages"] == 5
    assert len(body["stats"]) == 2


async def test_peek_through_the_admin_leaves_messages_queued(
    admin: AdminServer, nsqds: list[NSQD], http: Any
) -> None:
    body = await get(http, admin, "/api/topics/orders/ship/peek?n=2")
    by_node: dict[str, list[str]] = {}
    for m in body["messages"]:
        by_node.setdefault(m["node"], []).append(m["body"])
    assert by_node == {
        address(nsqds[0].http_address): ["order 0", "order 1"],
        address(nsqds[1].http_address): ["order 0", "order 1"],
    }
    assert (await get(http, admin, "/api/topics/orders/ship"))["depth"] == 5
    bad = await http(admin.http_address, "GET", "/api/topics/orders/ship/peek?n=0")
    assert (bad.status, bad.json()) == (400, {"message": "INVALID_ARG_N"})


async def test_a_dead_and_a_silent_node_are_shown_and_do_not_stall_the_page(
    nsqds: list[NSQD], make_admin: Any, silent_node: str, http: Any
) -> None:
    admin = await make_admin(
        nsqd_http_addresses=(address(nsqds[0].http_address), "127.0.0.1:1", silent_node),
        http_client_request_timeout=1.0,
    )
    started = trio.current_time()
    body = await get(http, admin, "/api/topics/orders")
    assert trio.current_time() - started < 1.8  # one request timeout, not two
    rows = {n["node"]: n for n in body["nodes"]}
    assert rows[address(nsqds[0].http_address)]["message_count"] == 3
    assert body["message"].startswith("WARNING:")
    assert "127.0.0.1:1" in body["message"]
    assert silent_node in body["message"]
    nodes = (await get(http, admin, "/api/nodes"))["nodes"]
    assert [n["up"] for n in nodes] == [True, False, False]
    assert "timed out" in nodes[2]["error"]


# -- history and live updates ---------------------------------------------------------------------


async def test_history_records_rates_as_messages_flow(
    nsqds: list[NSQD], make_admin: Any, http: Any
) -> None:
    admin = await make_admin(
        nsqd_http_addresses=tuple(address(n.http_address) for n in nsqds), sample_interval=0.05
    )
    history = admin.admin.history
    await wait_until(lambda: len(history.points("topic:orders")) >= 2)
    for _ in range(5):
        assert (await http(nsqds[0].http_address, "POST", "/pub?topic=orders", b"m")).status == 200
    await wait_until(lambda: (history.rate("topic:orders") or 0) > 0 or None)
    body = await get(http, admin, "/api/history?series=topic:orders")
    assert body["interval"] == 0.05
    assert sum(p["rate"] or 0 for p in body["points"]) > 0
    assert body["points"][-1]["depth"] >= 5


async def test_event_stream_sends_one_event_per_sample(nsqds: list[NSQD], make_admin: Any) -> None:
    admin = await make_admin(
        nsqd_http_addresses=(address(nsqds[0].http_address),), sample_interval=0.05
    )
    with trio.fail_after(5):
        stream = await trio.open_tcp_stream(*admin.http_address)
        async with stream:
            await stream.send_all(b"GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n")
            received = b""
            while received.count(b"event: sample") < 2:
                received += await stream.receive_some(4096)
    assert b"text/event-stream" in received
    assert b'"total_messages": 3' in received


# -- actions ----------------------------------------------------------------------------------


def channel_of(nsqd: NSQD, topic: str = "orders", channel: str = "ship") -> Any:
    return nsqd.topics[topic].channels[channel]


async def test_pause_and_unpause_channel_on_every_node(
    admin: AdminServer, nsqds: list[NSQD], http: Any
) -> None:
    response = await post(http, admin, "/api/topics/orders/ship", {"action": "pause"})
    assert response.status == 200
    assert response.json()["message"] == ""
    assert len(response.json()["results"]) == 2
    assert all(channel_of(n).paused for n in nsqds)
    assert (await get(http, admin, "/api/topics/orders/ship"))["paused"] is True
    await post(http, admin, "/api/topics/orders/ship", {"action": "unpause"})
    assert not any(channel_of(n).paused for n in nsqds)


async def test_pause_and_unpause_topic(admin: AdminServer, nsqds: list[NSQD], http: Any) -> None:
    assert (await post(http, admin, "/api/topics/orders", {"action": "pause"})).status == 200
    assert all(n.topics["orders"].paused for n in nsqds)
    assert (await post(http, admin, "/api/topics/orders", {"action": "unpause"})).status == 200
    assert not any(n.topics["orders"].paused for n in nsqds)


async def test_empty_channel_and_topic(admin: AdminServer, nsqds: list[NSQD], http: Any) -> None:
    assert (await post(http, admin, "/api/topics/orders/ship", {"action": "empty"})).status == 200
    assert [channel_of(n).depth() for n in nsqds] == [0, 0]
    assert (await post(http, admin, "/api/topics/audit", {"action": "empty"})).status == 200
    assert nsqds[1].topics["audit"].depth() == 0


async def test_delete_channel_and_topic_on_every_node(
    admin: AdminServer, nsqds: list[NSQD], http: Any
) -> None:
    response = await http(admin.http_address, "DELETE", "/api/topics/orders/ship")
    assert response.status == 200
    assert not any("ship" in n.topics["orders"].channels for n in nsqds)
    assert (await post(http, admin, "/api/topics/orders", {"action": "delete"})).status == 200
    assert not any("orders" in n.topics for n in nsqds)
    missing = await post(http, admin, "/api/topics/orders", {"action": "pause"})
    assert (missing.status, missing.json()["message"]) == (404, "TOPIC_NOT_FOUND")


async def test_create_topic_and_channel_on_listed_nsqds(
    admin: AdminServer, nsqds: list[NSQD], http: Any
) -> None:
    response = await post(http, admin, "/api/topics", {"topic": "fresh", "channel": "first"})
    assert response.status == 200, response.body
    assert all("first" in n.topics["fresh"].channels for n in nsqds)
    bad = await post(http, admin, "/api/topics", {"topic": "bad name"})
    assert (bad.status, bad.json()) == (400, {"message": "INVALID_ARG_TOPIC"})
    missing = await post(http, admin, "/api/topics", {})
    assert (missing.status, missing.json()) == (400, {"message": "MISSING_ARG_TOPIC"})


async def test_bad_action_and_bad_body(admin: AdminServer, http: Any) -> None:
    response = await post(http, admin, "/api/topics/orders", {"action": "explode"})
    assert (response.status, response.json()) == (400, {"message": "INVALID_ACTION"})
    response = await http(admin.http_address, "POST", "/api/topics/orders", b"{", JSON_HEADERS)
    assert (response.status, response.json()) == (400, {"message": "INVALID_BODY"})


async def test_an_action_every_node_refuses_is_502(
    make_admin: Any, nsqds: list[NSQD], http: Any
) -> None:
    admin = await make_admin(nsqd_http_addresses=("127.0.0.1:1",))
    response = await post(http, admin, "/api/topics", {"topic": "t"})
    assert response.status == 502
    assert response.json()["message"].startswith("UPSTREAM_ERROR:")


@pytest.mark.parametrize(
    "headers",
    [
        [("Content-Type", "application/x-www-form-urlencoded")],
        [("Content-Type", "text/plain")],
        [*JSON_HEADERS, ("Origin", "http://evil.example")],
        [*JSON_HEADERS, ("Sec-Fetch-Site", "cross-site")],
    ],
)
async def test_cross_site_requests_are_refused(
    admin: AdminServer, nsqds: list[NSQD], http: Any, headers: Any
) -> None:
    response = await post(http, admin, "/api/topics/orders/ship", {"action": "pause"}, headers)
    assert response.status == 403
    assert response.json()["message"].startswith("FORBIDDEN")
    assert not any(channel_of(n).paused for n in nsqds)


async def test_same_origin_browser_request_is_allowed(
    admin: AdminServer, nsqds: list[NSQD], http: Any
) -> None:
    host = address(admin.http_address)
    headers = [*JSON_HEADERS, ("Origin", f"http://{host}"), ("Sec-Fetch-Site", "same-origin")]
    # the http helper sends Host as host:port, so Origin matches it
    response = await post(http, admin, "/api/topics/orders/ship", {"action": "pause"}, headers)
    assert response.status == 200
    assert all(channel_of(n).paused for n in nsqds)


async def test_get_never_changes_anything(admin: AdminServer, http: Any) -> None:
    response = await http(admin.http_address, "GET", "/api/topics/orders/ship?action=pause")
    assert response.status == 200
    assert response.json()["paused"] is False
    response = await http(admin.http_address, "PUT", "/api/topics/orders/ship")
    assert response.status == 405


async def test_pages_are_the_app_and_assets_are_served_locally(
    admin: AdminServer, http: Any
) -> None:
    for path in ("/", "/topics/orders", "/topics/orders/ship", "/nodes", "/lookup", "/counter"):
        response = await http(admin.http_address, "GET", path)
        assert response.status == 200
        assert b'<script src="/static/app.js"' in response.body
        assert response.headers["x-frame-options"] == "DENY"
        assert b"http://" not in response.body
        assert b"https://" not in response.body
    for asset in ("/static/app.js", "/static/app.css"):
        assert (await http(admin.http_address, "GET", asset)).status == 200
    assert (await http(admin.http_address, "GET", "/ping")).body == b"OK"


# -- through a lookupd ------------------------------------------------------------------------


async def lookupd_get(http: Any, lookupd: Lookupd, target: str) -> Any:
    response = await http(lookupd.http_address, "GET", target)
    assert response.status == 200, (target, response.body)
    return response.json()


async def test_lookupd_discovery_and_lookup_page(
    registered: tuple[Lookupd, list[NSQD]], make_admin: Any, http: Any
) -> None:
    lookupd, nsqds = registered
    admin = await make_admin(lookupd_http_addresses=(address(lookupd.http_address),))
    nodes = (await get(http, admin, "/api/nodes"))["nodes"]
    assert sorted(n["node"] for n in nodes) == sorted(address(n.http_address) for n in nsqds)
    assert all(n["hostname"] == socket.gethostname() and n["remote_addresses"] for n in nodes)
    assert all(n["up"] for n in nodes)

    response = await post(http, admin, "/api/topics", {"topic": "planned", "channel": "later"})
    assert response.status == 200
    assert "planned" in (await lookupd_get(http, lookupd, "/topics"))["topics"]
    channels = await lookupd_get(http, lookupd, "/channels?topic=planned")
    assert channels["channels"] == ["later"]
    assert not any("planned" in n.topics for n in nsqds)  # NSQ: lookupd only

    lookup = await get(http, admin, "/api/lookup")
    rows = {t["topic"]: t for t in lookup["topics"]}
    assert rows["planned"] == {
        "topic": "planned",
        "channels": ["later"],
        "producers": [],
        "inactive": True,
    }
    assert rows["orders"]["inactive"] is False
    inactive = await get(http, admin, "/api/topics?inactive=true")
    assert inactive["topics"] == {"planned": ["later"]}
    assert "planned" in (await get(http, admin, "/api/topics"))["topics"]


async def test_lookupd_actions_reach_lookupds_and_nsqds(
    registered: tuple[Lookupd, list[NSQD]], make_admin: Any, http: Any
) -> None:
    lookupd, nsqds = registered
    admin = await make_admin(lookupd_http_addresses=(address(lookupd.http_address),))
    assert (await post(http, admin, "/api/topics/orders/ship", {"action": "pause"})).status == 200
    assert all(channel_of(n).paused for n in nsqds)

    response = await post(http, admin, "/api/topics", {"topic": "orders", "channel": "bill"})
    assert response.status == 200
    assert all("bill" in n.topics["orders"].channels for n in nsqds)  # on the producers
    await until(lambda: all(knows(lookupd, n) for n in nsqds))

    # lookupd keeps a channel name its producers dropped (B.9) unless asked to delete it
    assert (await http(admin.http_address, "DELETE", "/api/topics/orders/bill")).status == 200
    assert not any("bill" in n.topics["orders"].channels for n in nsqds)
    channels = await lookupd_get(http, lookupd, "/channels?topic=orders")
    assert channels["channels"] == ["ship"]

    assert (await post(http, admin, "/api/topics/audit", {"action": "delete"})).status == 200
    assert "audit" not in nsqds[1].topics
    assert (await lookupd_get(http, lookupd, "/topics"))["topics"] == ["orders"]


async def test_tombstone_topic_on_one_node(
    registered: tuple[Lookupd, list[NSQD]],
    make_admin: Any,
    http: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    lookupd, nsqds = registered
    admin = await make_admin(lookupd_http_addresses=(address(lookupd.http_address),))
    node = address(nsqds[0].http_address)
    body = {"action": "tombstone", "topic": "orders"}
    with caplog.at_level(logging.INFO, logger="pnsq.lookupd"):
        assert (await post(http, admin, f"/api/nodes/{node}", body)).status == 200
    # nsqd drops the topic's registration as it deletes it, so the tombstone itself is only
    # seen in between: in the lookupd's log
    assert f"DB: setting tombstone for producer@{node} of topic(orders)" in caplog.messages
    assert "orders" not in nsqds[0].topics
    assert "orders" in nsqds[1].topics
    assert nsqds[1].tcp_address is not None
    lookup = await lookupd_get(http, lookupd, "/lookup?topic=orders")
    assert [p["tcp_port"] for p in lookup["producers"]] == [nsqds[1].tcp_address[1]]
    response = await post(http, admin, "/api/nodes/127.0.0.1:1", body)
    assert (response.status, response.json()) == (404, {"message": "NODE_NOT_FOUND"})


async def test_a_dead_or_hung_lookupd_is_a_warning(
    registered: tuple[Lookupd, list[NSQD]], make_admin: Any, silent_node: str, http: Any
) -> None:
    lookupd, _ = registered
    admin = await make_admin(
        lookupd_http_addresses=(address(lookupd.http_address), "127.0.0.1:1", silent_node),
        http_client_request_timeout=0.5,
    )
    body = await get(http, admin, "/api/topics")
    assert body["topics"] == ["audit", "orders"]
    assert "lookupd 127.0.0.1:1 did not answer" in body["message"]
    assert f"lookupd {silent_node} did not answer" in body["message"]
