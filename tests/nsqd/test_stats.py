"""/stats: the JSON shape nsqadmin and exporters parse (§3.3), its filters, and the text page.

The broker is driven over real sockets (TCP producers and consumers, HTTP administration), so
the numbers checked are the ones a monitoring tool would see.
"""

from __future__ import annotations

from typing import Any

import pytest
from v2client import V2Client, open_consumer

from pnsq.nsqd.nsqd import NSQD
from pnsq.nsqd.stats import memory_stats, stats_document, stats_text

TOP_KEYS = ["version", "health", "start_time", "state", "topics", "memory", "producers"]
TOPIC_KEYS = [
    "topic_name",
    "channels",
    "depth",
    "backend_depth",
    "message_count",
    "message_bytes",
    "paused",
    "e2e_processing_latency",
    "backend_corrupt_count",  # pnsq's own, after NSQ's keys
]
CHANNEL_KEYS = [
    "channel_name",
    "depth",
    "backend_depth",
    "in_flight_count",
    "deferred_count",
    "message_count",
    "requeue_count",
    "timeout_count",
    "client_count",
    "clients",
    "paused",
    "e2e_processing_latency",
    "backend_corrupt_count",
]
CLIENT_HEAD = [
    "client_id",
    "hostname",
    "version",
    "remote_address",
    "state",
    "ready_count",
    "in_flight_count",
    "message_count",
    "finish_count",
    "requeue_count",
    "connect_ts",
    "sample_rate",
    "deflate",
    "snappy",
    "user_agent",
    "topology_zone",
    "topology_region",
]
CLIENT_TLS = [
    "tls",
    "tls_cipher_suite",
    "tls_version",
    "tls_negotiated_protocol",
    "tls_negotiated_protocol_is_mutual",
]
CONSUMER_KEYS = CLIENT_HEAD + CLIENT_TLS
PRODUCER_KEYS = [*CLIENT_HEAD, "pub_counts", *CLIENT_TLS]
MEMORY_KEYS = [
    "heap_objects",
    "heap_idle_bytes",
    "heap_in_use_bytes",
    "heap_released_bytes",
    "gc_pause_usec_100",
    "gc_pause_usec_99",
    "gc_pause_usec_95",
    "next_gc_bytes",
    "gc_total_runs",
]
NO_E2E = {"count": 0, "percentiles": None}


@pytest.fixture
async def nsqd(make_nsqd: Any) -> NSQD:
    started: NSQD = await make_nsqd()  # with HTTP, unlike tests/nsqd/conftest.py's
    return started


async def stats(http: Any, nsqd: NSQD, query: str = "") -> dict[str, Any]:
    response = await http(nsqd.http_address, "GET", f"/stats?format=json{query}")
    assert response.status == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.headers["x-nsq-content-type"] == "nsq; version=1.0"
    data: dict[str, Any] = response.json()
    return data


async def producer(nsqd: NSQD, topic: str, count: int) -> V2Client:
    assert nsqd.tcp_address is not None
    client = await V2Client.connect(nsqd.tcp_address)
    await client.identify(client_id="pub", hostname="pubhost", user_agent="test-producer/1.0")
    await client.mpub(topic, [b"m%d" % i for i in range(count)])
    return client


async def test_json_shape_with_a_consumer_and_a_producer(nsqd: NSQD, http: Any) -> None:
    assert nsqd.tcp_address is not None
    pub = await producer(nsqd, "orders", 3)
    consumer = await open_consumer(
        nsqd.tcp_address, "orders", "ship", rdy=2, client_id="c1", hostname="host1"
    )
    await consumer.read_messages(2)
    doc = await stats(http, nsqd)

    assert list(doc) == TOP_KEYS
    assert (doc["version"], doc["health"], doc["start_time"]) == ("1.3.0", "OK", nsqd.start_time)
    assert list(doc["memory"]) == MEMORY_KEYS
    [topic] = doc["topics"]
    assert list(topic) == TOPIC_KEYS
    assert topic["topic_name"] == "orders"
    assert (topic["depth"], topic["message_count"], topic["message_bytes"]) == (0, 3, 6)
    assert (topic["backend_depth"], topic["paused"]) == (0, False)
    assert topic["e2e_processing_latency"] == NO_E2E
    [channel] = topic["channels"]
    assert list(channel) == CHANNEL_KEYS
    assert channel["channel_name"] == "ship"
    counts = ("depth", "in_flight_count", "deferred_count", "message_count", "client_count")
    assert tuple(channel[k] for k in counts) == (1, 2, 0, 3, 1)
    [client] = channel["clients"]
    assert list(client) == CONSUMER_KEYS
    assert (client["client_id"], client["hostname"], client["version"]) == ("c1", "host1", "V2")
    assert (client["state"], client["ready_count"], client["in_flight_count"]) == (3, 2, 2)
    assert client["message_count"] == 2
    assert client["remote_address"].startswith("127.0.0.1:")
    assert (client["tls"], client["deflate"], client["snappy"]) == (False, False, False)
    [prod] = doc["producers"]
    assert list(prod) == PRODUCER_KEYS
    assert prod["pub_counts"] == [{"topic": "orders", "count": 3}]
    assert (prod["user_agent"], prod["state"]) == ("test-producer/1.0", 0)
    await pub.aclose()
    await consumer.aclose()


async def test_an_idle_nsqd_has_no_topics_and_null_producers(nsqd: NSQD, http: Any) -> None:
    doc = await stats(http, nsqd)
    assert (doc["topics"], doc["producers"]) == ([], None)


async def test_an_http_publisher_is_not_a_producer(nsqd: NSQD, http: Any) -> None:
    await http(nsqd.http_address, "POST", "/pub?topic=t", b"x")
    assert (await stats(http, nsqd))["producers"] is None  # B.8


async def test_a_topic_without_channels_lists_an_empty_array(nsqd: NSQD, http: Any) -> None:
    nsqd.get_topic("lonely")
    [topic] = (await stats(http, nsqd))["topics"]
    assert topic["channels"] == []


async def test_topic_filter(nsqd: NSQD, http: Any) -> None:
    for name in ("b", "a", "c"):
        nsqd.get_topic(name)
    assert [t["topic_name"] for t in (await stats(http, nsqd))["topics"]] == ["a", "b", "c"]
    assert [t["topic_name"] for t in (await stats(http, nsqd, "&topic=b"))["topics"]] == ["b"]
    assert (await stats(http, nsqd, "&topic=unknown"))["topics"] is None  # B.8


async def test_channel_filter_keeps_only_topics_with_that_channel(nsqd: NSQD, http: Any) -> None:
    for topic, channel in (("t1", "x"), ("t1", "y"), ("t2", "y"), ("t3", "z")):
        nsqd.get_topic(topic).get_channel(channel, 0.0)
    doc = await stats(http, nsqd, "&channel=y")
    assert [
        (t["topic_name"], [c["channel_name"] for c in t["channels"]]) for t in doc["topics"]
    ] == [
        ("t1", ["y"]),
        ("t2", ["y"]),
    ]
    doc = await stats(http, nsqd, "&topic=t1")
    assert [c["channel_name"] for c in doc["topics"][0]["channels"]] == ["x", "y"]
    assert (await stats(http, nsqd, "&topic=t3&channel=y"))["topics"] == []


@pytest.mark.parametrize("value", ["false", "0"])
async def test_include_clients_false_nulls_clients_and_producers(
    nsqd: NSQD, http: Any, value: str
) -> None:
    assert nsqd.tcp_address is not None
    pub = await producer(nsqd, "t", 1)
    consumer = await open_consumer(nsqd.tcp_address, "t", "c")
    doc = await stats(http, nsqd, f"&include_clients={value}")
    channel = doc["topics"][0]["channels"][0]
    assert (channel["clients"], channel["client_count"], doc["producers"]) == (None, 1, None)
    await pub.aclose()
    await consumer.aclose()


async def test_include_mem_false_leaves_memory_out(nsqd: NSQD, http: Any) -> None:
    doc = await stats(http, nsqd, "&include_mem=0")
    assert "memory" not in doc
    assert list(doc) == ["version", "health", "start_time", "state", "topics", "producers"]


async def test_producer_pub_counts_follow_the_topic_filter(nsqd: NSQD, http: Any) -> None:
    pub = await producer(nsqd, "a", 2)
    await pub.pub("b", b"x")
    [prod] = (await stats(http, nsqd))["producers"]
    assert prod["pub_counts"] == [{"topic": "a", "count": 2}, {"topic": "b", "count": 1}]
    [prod] = (await stats(http, nsqd, "&topic=b"))["producers"]
    assert prod["pub_counts"] == [{"topic": "b", "count": 1}]
    await pub.aclose()


async def test_health_and_administration_show_in_stats(nsqd: NSQD, http: Any) -> None:
    address = nsqd.http_address
    await http(address, "POST", "/channel/create?topic=t&channel=c")  # no topic yet: 404
    await http(address, "POST", "/topic/create?topic=t")
    await http(address, "POST", "/channel/create?topic=t&channel=c")
    await http(address, "POST", "/mpub?topic=t", b"1\n2")
    await http(address, "POST", "/topic/pause?topic=t")
    await http(address, "POST", "/channel/pause?topic=t&channel=c")
    nsqd.health = "NOK - disk full"
    doc = await stats(http, nsqd)
    [topic] = doc["topics"]
    assert (doc["health"], topic["paused"], topic["channels"][0]["paused"]) == (
        "NOK - disk full",
        True,
        True,
    )
    assert topic["channels"][0]["depth"] == 2
    await http(address, "POST", "/channel/empty?topic=t&channel=c")
    await http(address, "POST", "/topic/unpause?topic=t")
    [topic] = (await stats(http, nsqd))["topics"]
    assert (topic["paused"], topic["channels"][0]["depth"]) == (False, 0)
    await http(address, "POST", "/channel/delete?topic=t&channel=c")
    assert (await stats(http, nsqd))["topics"][0]["channels"] == []
    await http(address, "POST", "/topic/delete?topic=t")
    assert (await stats(http, nsqd))["topics"] == []


async def test_deferred_and_requeued_counts(nsqd: NSQD, http: Any) -> None:
    assert nsqd.tcp_address is not None
    consumer = await open_consumer(nsqd.tcp_address, "t", "c")
    await http(nsqd.http_address, "POST", "/pub?topic=t&defer=60000", b"later")
    await http(nsqd.http_address, "POST", "/pub?topic=t", b"now")
    message = await consumer.read_message()
    await consumer.req(message.id, 0)
    await consumer.sync()
    [channel] = (await stats(http, nsqd, "&topic=t"))["topics"][0]["channels"]
    assert (channel["deferred_count"], channel["requeue_count"]) == (1, 1)
    await consumer.aclose()


async def test_e2e_percentiles_when_enabled(make_nsqd: Any, http: Any) -> None:
    nsqd = await make_nsqd(e2e_processing_latency_percentiles=(0.99, 0.5))
    assert nsqd.tcp_address is not None
    consumer = await open_consumer(nsqd.tcp_address, "t", "c")
    await http(nsqd.http_address, "POST", "/pub?topic=t", b"x")
    await consumer.fin((await consumer.read_message()).id)
    await consumer.sync()
    doc = await stats(http, nsqd, "&topic=t")
    topic_e2e = doc["topics"][0]["e2e_processing_latency"]
    assert topic_e2e["count"] == 1
    assert [p["quantile"] for p in topic_e2e["percentiles"]] == [0.99, 0.5]
    assert doc["topics"][0]["channels"][0]["e2e_processing_latency"] == topic_e2e
    text = (await http(nsqd.http_address, "GET", "/stats")).body.decode()
    assert "e2e%: " in text
    assert "us, " in text or "ms, " in text
    await consumer.aclose()


async def test_e2e_before_any_sample_reads_as_nsq(make_nsqd: Any, http: Any) -> None:
    """Go nsqd: a channel's stream answers 0 per percentile before its first FIN; a topic
    with no channel has no stream and answers null."""
    nsqd = await make_nsqd(e2e_processing_latency_percentiles=(0.99, 0.5))
    for path in (
        "/topic/create?topic=bare",
        "/topic/create?topic=t",
        "/channel/create?topic=t&channel=c",
    ):
        assert (await http(nsqd.http_address, "POST", path)).status == 200
    topics = {t["topic_name"]: t for t in (await stats(http, nsqd))["topics"]}
    zeros = {"count": 0, "percentiles": [{"quantile": q, "value": 0.0} for q in (0.99, 0.5)]}
    assert topics["bare"]["e2e_processing_latency"] == NO_E2E
    assert topics["t"]["e2e_processing_latency"] == zeros
    assert topics["t"]["channels"][0]["e2e_processing_latency"] == zeros


# -- the text page ----------------------------------------------------------------------------


async def test_text_is_the_default_format(nsqd: NSQD, http: Any) -> None:
    assert nsqd.tcp_address is not None
    pub = await producer(nsqd, "orders", 3)
    consumer = await open_consumer(nsqd.tcp_address, "orders", "ship", hostname="host1")
    await consumer.read_message()
    await http(nsqd.http_address, "POST", "/channel/pause?topic=orders&channel=ship")
    response = await http(nsqd.http_address, "GET", "/stats?format=text")
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    lines = response.body.decode().splitlines()
    assert lines[0].startswith("nsqd v1.3.0 (built w/python")
    assert lines[1].startswith("start_time ")
    assert lines[2].startswith("uptime ")
    assert "Health: OK" in lines
    assert "Memory:" in lines
    assert any(line.startswith("   heap_objects") for line in lines)
    topic_line = next(line for line in lines if "[orders" in line)
    assert topic_line.split() == [
        "[orders",
        "]",
        "depth:",
        "0",
        "be-depth:",
        "0",
        "msgs:",
        "3",
        "e2e%:",
    ]
    channel_line = next(line for line in lines if "[ship" in line)
    assert channel_line.startswith("   *P [ship ")
    assert "inflt: 1" in channel_line
    assert "msgs: 3" in channel_line
    client_line = next(line for line in lines if line.startswith("        [V2 host1:"))
    assert "state: 3 inflt: 1" in client_line
    assert "connected: " in client_line
    producers = lines[lines.index("Producers:") + 1]
    assert producers.startswith("   [V2 pubhost:")
    assert "msgs: 3" in producers
    assert "topics: orders=3 connected: " in producers
    await pub.aclose()
    await consumer.aclose()


async def test_text_with_nothing_says_none(nsqd: NSQD, http: Any) -> None:
    text = (await http(nsqd.http_address, "GET", "/stats?include_mem=false")).body.decode()
    assert "\nTopics: None\n" in text
    assert text.endswith("\nProducers: None\n")
    assert "Memory:" not in text


def test_stats_text_renders_a_document() -> None:
    document = {
        "version": "1.3.0",
        "health": "OK",
        "start_time": 1_700_000_000,
        "topics": [
            {
                "topic_name": "t",
                "channels": [],
                "depth": 12,
                "backend_depth": 2,
                "message_count": 99,
                "message_bytes": 990,
                "paused": True,
                "e2e_processing_latency": {
                    "count": 5,
                    "percentiles": [
                        {"quantile": 0.99, "value": 2_500_000.0},
                        {"quantile": 0.5, "value": 1_500.0},
                    ],
                },
            }
        ],
        "producers": None,
    }
    text = stats_text(document, 1_700_000_090.5)
    assert "\nuptime 1m30.5s\n" in text
    assert (
        "\n*P [t              ] depth: 12    be-depth: 2     msgs: 99       e2e%: 2.5ms, 1.5us\n"
        in text
    )


def test_memory_stats_are_cheap_non_negative_integers() -> None:
    memory = memory_stats()
    assert list(memory) == MEMORY_KEYS
    assert all(isinstance(v, int) and v >= 0 for v in memory.values())
    assert memory["heap_objects"] > 0
    assert memory["heap_in_use_bytes"] > 0


async def test_stats_document_can_be_built_without_http(make_nsqd: Any) -> None:
    nsqd = await make_nsqd(http_address="")
    nsqd.get_topic("t")
    doc = stats_document(nsqd, include_mem=False)
    assert [t["topic_name"] for t in doc["topics"]] == ["t"]
