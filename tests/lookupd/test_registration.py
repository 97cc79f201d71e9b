"""nsqd registering with nsqlookupd, seen through lookupd's HTTP API (real sockets)."""

from __future__ import annotations

from typing import Any

import trio
from lookup_helpers import MakeLookupd, tcp, until

from pnsq.lookupd import Lookupd
from pnsq.nsqd.nsqd import NSQD


async def get(http: Any, lookupd: Lookupd, target: str) -> Any:
    response = await http(lookupd.http_address, "GET", target)
    assert response.status == 200, (target, response)
    assert response.headers["x-nsq-content-type"] == "nsq; version=1.0"
    return response.json()


async def post(http: Any, address: Any, target: str) -> None:
    response = await http(address, "POST", target)
    assert response.status == 200, (target, response)


def producer_ports(document: Any) -> list[int]:
    return sorted(p["tcp_port"] for p in document["producers"])


def registered(lookupd: Lookupd, nsqd: NSQD, topic: str, channel: str | None = None) -> bool:
    assert nsqd.tcp_address is not None
    db = lookupd.db
    producers = (
        db.topics.get(topic, {}) if channel is None else db.channels.get(topic, {}).get(channel, {})
    )
    return any(p.peer.info["tcp_port"] == nsqd.tcp_address[1] for p in producers.values())


async def test_registration_and_deregistration_show_in_lookup_topics_channels_and_nodes(
    lookupd: Lookupd, make_nsqd: Any, http: Any
) -> None:
    nsqd = await make_nsqd(nsqlookupd_tcp_addresses=(tcp(lookupd),))
    assert nsqd.tcp_address is not None
    assert nsqd.http_address is not None
    await post(http, nsqd.http_address, "/topic/create?topic=t")
    await post(http, nsqd.http_address, "/channel/create?topic=t&channel=c")
    await until(lambda: registered(lookupd, nsqd, "t", "c"))

    lookup = await get(http, lookupd, "/lookup?topic=t")
    assert lookup["channels"] == ["c"]
    [producer] = lookup["producers"]
    assert producer["broadcast_address"] == "127.0.0.1"
    assert (producer["tcp_port"], producer["http_port"]) == (
        nsqd.tcp_address[1],
        nsqd.http_address[1],
    )
    assert set(producer) == {
        "remote_address",
        "hostname",
        "broadcast_address",
        "tcp_port",
        "http_port",
        "version",
        "topology_zone",
        "topology_region",
    }
    assert await get(http, lookupd, "/topics") == {"topics": ["t"]}
    assert await get(http, lookupd, "/channels?topic=t") == {"channels": ["c"]}
    [node] = (await get(http, lookupd, "/nodes"))["producers"]
    assert (node["tcp_port"], node["topics"], node["tombstones"]) == (
        nsqd.tcp_address[1],
        ["t"],
        [False],
    )

    # channel delete: the producer leaves the channel; deleting the topic leaves the topic
    await post(http, nsqd.http_address, "/channel/delete?topic=t&channel=c")
    await until(lambda: not registered(lookupd, nsqd, "t", "c"))
    assert registered(lookupd, nsqd, "t")
    await post(http, nsqd.http_address, "/topic/delete?topic=t")
    await until(lambda: not registered(lookupd, nsqd, "t"))
    # lookupd never forgets a name it has seen (B.9): 200 with no producer, not 404
    assert await get(http, lookupd, "/lookup?topic=t") == {"channels": ["c"], "producers": []}
    assert await get(http, lookupd, "/topics") == {"topics": ["t"]}
    [node] = (await get(http, lookupd, "/nodes"))["producers"]
    assert (node["topics"], node["tombstones"]) == ([], [])


async def test_existing_topics_are_registered_on_connect_and_ephemeral_ones_vanish(
    lookupd: Lookupd, make_nsqd: Any, http: Any
) -> None:
    nsqd = await make_nsqd()
    nsqd.get_topic("bare")
    nsqd.get_topic("t").get_channel("c#ephemeral", trio.current_time())
    response = await http(
        nsqd.http_address, "PUT", "/config/nsqlookupd_tcp_addresses", f'["{tcp(lookupd)}"]'.encode()
    )
    assert response.status == 200
    await until(
        lambda: registered(lookupd, nsqd, "bare") and registered(lookupd, nsqd, "t", "c#ephemeral")
    )
    assert await get(http, lookupd, "/channels?topic=t") == {"channels": ["c#ephemeral"]}
    await post(http, nsqd.http_address, "/channel/delete?topic=t&channel=c%23ephemeral")
    await until(lambda: "c#ephemeral" not in lookupd.db.channels.get("t", {}))
    assert await get(http, lookupd, "/channels?topic=t") == {"channels": []}

    # an empty list closes the link: lookupd drops every registration of that nsqd at once
    response = await http(nsqd.http_address, "PUT", "/config/nsqlookupd_tcp_addresses", b"[]")
    assert response.status == 200
    await until(lambda: not lookupd.db.peers)
    assert (await get(http, lookupd, "/lookup?topic=bare"))["producers"] == []


async def test_a_tombstone_hides_the_producer_from_lookup_but_not_from_nodes(
    lookupd: Lookupd, make_nsqd: Any, http: Any
) -> None:
    a = await make_nsqd(nsqlookupd_tcp_addresses=(tcp(lookupd),))
    b = await make_nsqd(nsqlookupd_tcp_addresses=(tcp(lookupd),))
    for nsqd in (a, b):
        nsqd.get_topic("t")
    await until(lambda: registered(lookupd, a, "t") and registered(lookupd, b, "t"))
    node = f"127.0.0.1:{a.http_address[1]}"
    await post(http, lookupd.http_address, f"/topic/tombstone?topic=t&node={node}")
    assert producer_ports(await get(http, lookupd, "/lookup?topic=t")) == [b.tcp_address[1]]
    nodes = {n["tcp_port"]: n for n in (await get(http, lookupd, "/nodes"))["producers"]}
    assert nodes[a.tcp_address[1]]["tombstones"] == [True]
    assert nodes[b.tcp_address[1]]["tombstones"] == [False]


async def test_two_lookupds_and_one_returns_after_dying(
    make_lookupd: MakeLookupd, make_nsqd: Any, http: Any
) -> None:
    first, second = await make_lookupd(), await make_lookupd()
    nsqd = await make_nsqd(nsqlookupd_tcp_addresses=(tcp(first), tcp(second)))
    nsqd.get_topic("t").get_channel("c", trio.current_time())
    await until(lambda: registered(first, nsqd, "t", "c") and registered(second, nsqd, "t", "c"))

    tcp_address, http_address = first.tcp_address, first.http_address
    assert tcp_address is not None
    assert http_address is not None
    first.stop()
    with trio.fail_after(10):
        while True:  # the old listeners close as its serve() ends; then the ports are free
            try:
                back = await make_lookupd(
                    tcp_address="{}:{}".format(*tcp_address),
                    http_address="{}:{}".format(*http_address),
                )
                break
            except OSError:
                await trio.sleep(0.05)
    await until(lambda: registered(back, nsqd, "t", "c"))
    lookup = await get(http, back, "/lookup?topic=t")
    assert (lookup["channels"], producer_ports(lookup)) == (["c"], [nsqd.tcp_address[1]])
    assert registered(second, nsqd, "t", "c")
