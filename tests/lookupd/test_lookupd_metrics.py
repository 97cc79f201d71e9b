"""GET /metrics on lookupd: its registrations as Prometheus sees them, checked against the API.

Two nsqd peers are played over raw TCP (IDENTIFY, REGISTER), so the test decides exactly what
is registered; the numbers must be those /topics, /channels, /nodes, /lookup and /debug give.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import trio
from lookup_helpers import until
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from pnsq.lookupd import Lookupd
from pnsq.wire.lookup import MAGIC_V1

Series = dict[tuple[str, frozenset[tuple[str, str]]], float]
PEER_LABELS = ("remote_address", "hostname", "broadcast_address", "tcp_port", "http_port")


def identify(tcp_port: int, http_port: int) -> bytes:
    peer = {
        "broadcast_address": "127.0.0.1",
        "hostname": f"node{tcp_port}",
        "tcp_port": tcp_port,
        "http_port": http_port,
        "version": "1.3.0",
    }
    body = json.dumps(peer).encode()
    return b"IDENTIFY\n" + struct.pack(">i", len(body)) + body


async def peer(lookupd: Lookupd, tcp_port: int, registrations: list[str]) -> trio.SocketStream:
    """A connected nsqd peer that registered ``registrations`` ("topic" or "topic channel"; as
    nsqd does, a channel's topic is registered first)."""
    assert lookupd.tcp_address is not None
    stream = await trio.open_tcp_stream(*lookupd.tcp_address)
    commands = b"".join(b"REGISTER %s\n" % r.encode() for r in registrations)
    await stream.send_all(MAGIC_V1 + identify(tcp_port, tcp_port + 1) + commands)
    await until(lambda: _registered(lookupd, tcp_port) == len(registrations))
    return stream


def _registered(lookupd: Lookupd, tcp_port: int) -> int:
    db = lookupd.db
    producers = [*db.topics.values()] + [p for c in db.channels.values() for p in c.values()]
    return sum(
        1 for group in producers for p in group.values() if p.peer.info["tcp_port"] == tcp_port
    )


async def scrape(http: Any, lookupd: Lookupd) -> Series:
    response = await http(lookupd.http_address, "GET", "/metrics")
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.body.decode())
        for sample in family.samples
    }


async def get(http: Any, lookupd: Lookupd, target: str) -> Any:
    response = await http(lookupd.http_address, "GET", target)
    assert response.status == 200
    return response.json()


def by_peer(scraped: Series, name: str) -> dict[str, float]:
    """A per-peer family's values by the peer's remote address."""
    return {
        dict(labels)["remote_address"]: value
        for (metric, labels), value in scraped.items()
        if metric == name
    }


async def test_counts_equal_what_the_http_api_answers(lookupd: Lookupd, http: Any) -> None:
    one = await peer(lookupd, 4150, ["orders", "orders ship", "orders audit", "users"])
    two = await peer(
        lookupd, 5150, ["orders", "orders ship", "clicks#ephemeral", "clicks#ephemeral c"]
    )
    await http(lookupd.http_address, "POST", "/topic/create?topic=empty")
    await http(lookupd.http_address, "POST", "/topic/tombstone?topic=orders&node=127.0.0.1:5151")
    scraped = await scrape(http, lookupd)

    topics = (await get(http, lookupd, "/topics"))["topics"]
    channels = [(await get(http, lookupd, f"/channels?topic={t}"))["channels"] for t in topics]
    nodes = (await get(http, lookupd, "/nodes"))["producers"]
    assert scraped[("nsqlookupd_topics", frozenset())] == len(topics) == 4
    assert scraped[("nsqlookupd_channels", frozenset())] == sum(map(len, channels)) == 3
    assert scraped[("nsqlookupd_producers", frozenset())] == len(nodes) == 2
    tombstones = sum(sum(node["tombstones"]) for node in nodes)
    assert scraped[("nsqlookupd_tombstones", frozenset())] == tombstones == 1
    lookup = await get(http, lookupd, "/lookup?topic=orders")
    assert [p["tcp_port"] for p in lookup["producers"]] == [4150]  # the other is tombstoned

    debug = await get(http, lookupd, "/debug")
    per_peer: dict[str, int] = {}
    for key, producers in debug.items():
        if not key.startswith("client:"):
            for producer in producers:
                per_peer[producer["id"]] = per_peer.get(producer["id"], 0) + 1
    registrations = by_peer(scraped, "nsqlookupd_producer_registrations")
    assert registrations == per_peer
    assert sorted(registrations.values()) == [4, 4]
    [labels] = [
        dict(labels)
        for (name, labels), _ in scraped.items()
        if name == "nsqlookupd_producer_registrations" and ("tcp_port", "4150") in labels
    ]
    node = next(n for n in nodes if n["tcp_port"] == 4150)
    assert labels == {name: str(node[name]) for name in PEER_LABELS}
    await one.aclose()
    await two.aclose()


async def test_a_silent_peer_ages_and_leaves_the_producer_count(
    lookupd: Lookupd, http: Any
) -> None:
    live = await peer(lookupd, 4150, ["a"])
    hung = await peer(lookupd, 5150, ["a", "a c"])
    [hung_peer] = [p for p in lookupd.db.peers.values() if p.info["tcp_port"] == 5150]
    hung_peer.last_update = lookupd.now() - 400  # past --inactive-producer-timeout (300 s)
    scraped = await scrape(http, lookupd)
    ages = by_peer(scraped, "nsqlookupd_producer_last_update_age_seconds")
    assert ages[hung_peer.id] >= 400
    assert min(ages.values()) < 60
    nodes = (await get(http, lookupd, "/nodes"))["producers"]
    assert scraped[("nsqlookupd_producers", frozenset())] == len(nodes) == 1
    assert by_peer(scraped, "nsqlookupd_producer_registrations")[hung_peer.id] == 2
    await hung.aclose()
    await until(lambda: hung_peer.id not in lookupd.db.peers)
    scraped = await scrape(http, lookupd)
    assert hung_peer.id not in by_peer(scraped, "nsqlookupd_producer_registrations")
    assert scraped[("nsqlookupd_topics", frozenset())] == 1  # lookupd never forgets a topic
    await live.aclose()


async def test_openmetrics_on_accept_and_process_metrics(lookupd: Lookupd, http: Any) -> None:
    accept = [("Accept", "application/openmetrics-text; version=1.0.0")]
    response = await http(lookupd.http_address, "GET", "/metrics", headers=accept)
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.body.endswith(b"# EOF\n")
    families = {f.name: f for f in openmetrics_families(response.body.decode())}
    assert families["nsqlookupd_topics"].samples[0].value == 0
    assert families["process_resident_memory_bytes"].samples[0].value > 0
    assert "python_gc_collections" in families
