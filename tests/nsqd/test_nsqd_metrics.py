"""GET /metrics on nsqd: what a Prometheus server scrapes, checked against /stats.

Every test reads the exposition with prometheus_client's own parsers, as a scraper would. The
per-topic and per-channel numbers must be /stats' (same moment, same state), so the workload
ends in a state that holds still: consumers at RDY 0, timers far away.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import trio
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families
from tls_helpers import Certs, https_get, make_certs, tls_options
from v2client import V2Client, open_consumer, wait_until

from pnsq.nsqd import disk_files
from pnsq.nsqd.disk import Histogram
from pnsq.nsqd.disk_record import HEAD_SIZE, MAGIC
from pnsq.nsqd.nsqd import NSQD

pytestmark = pytest.mark.timeout(90)

Labels = frozenset[tuple[str, str]]
Series = dict[tuple[str, Labels], float]

# /metrics name -> /stats key, for every topic and for every channel.
TOPIC_FIELDS = {
    "nsq_depth": "depth",
    "nsq_backend_depth": "backend_depth",
    "nsq_message_count": "message_count",
    "nsq_message_bytes": "message_bytes",
    "nsq_paused": "paused",
}
CHANNEL_FIELDS = {
    "nsq_depth": "depth",
    "nsq_backend_depth": "backend_depth",
    "nsq_message_count": "message_count",
    "nsq_in_flight_count": "in_flight_count",
    "nsq_deferred_count": "deferred_count",
    "nsq_requeue_count": "requeue_count",
    "nsq_timeout_count": "timeout_count",
    "nsq_client_count": "client_count",
    "nsq_paused": "paused",
}
CLIENT_FIELDS = {
    "nsq_client_ready_count": "ready_count",
    "nsq_client_in_flight_count": "in_flight_count",
    "nsq_client_message_count": "message_count",
    "nsq_client_finish_count": "finish_count",
    "nsq_client_requeue_count": "requeue_count",
    "nsq_client_state": "state",
    "nsq_client_connect_ts": "connect_ts",
}


def series(text: str) -> Series:
    """Every sample by name and labels; a series given twice (Prometheus refuses the whole
    scrape then) fails the test."""
    samples = [
        ((sample.name, frozenset(sample.labels.items())), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]
    found = dict(samples)
    assert len(found) == len(samples), "a series appears twice"
    return found


def key(name: str, **labels: str) -> tuple[str, Labels]:
    return name, frozenset(labels.items())


async def scrape(http: Any, nsqd: NSQD, accept: str | None = None) -> Series:
    headers = [("Accept", accept)] if accept else []
    response = await http(nsqd.http_address, "GET", "/metrics", headers=headers)
    assert response.status == 200
    return series(response.body.decode())


async def stats(http: Any, nsqd: NSQD) -> dict[str, Any]:
    data: dict[str, Any] = (await http(nsqd.http_address, "GET", "/stats?format=json")).json()
    return data


def topic_stats(document: dict[str, Any], name: str) -> dict[str, Any]:
    """A topic of a /stats document (``sync()`` adds a topic of its own)."""
    [topic] = [topic for topic in document["topics"] if topic["topic_name"] == name]
    return topic


def _bool(value: bool) -> str:
    return "true" if value else "false"


def expected_from(document: dict[str, Any]) -> Series:
    """The per-topic and per-channel series /metrics must show for a /stats document."""
    expected: Series = {}
    for topic in document["topics"]:
        name, paused = topic["topic_name"], _bool(topic["paused"])
        labels = {"type": "topic", "topic": name, "paused": paused}
        for metric, field in TOPIC_FIELDS.items():
            expected[key(metric, **labels)] = float(topic[field])
        expected[key("nsq_channel_count", **labels)] = float(len(topic["channels"]))
        for channel in topic["channels"]:
            labels = {
                "type": "channel",
                "topic": name,
                "channel": channel["channel_name"],
                "paused": _bool(channel["paused"]),
            }
            for metric, field in CHANNEL_FIELDS.items():
                expected[key(metric, **labels)] = float(channel[field])
    return expected


def queue_series(scraped: Series) -> Series:
    names = {*TOPIC_FIELDS, *CHANNEL_FIELDS, "nsq_channel_count"}
    return {k: v for k, v in scraped.items() if k[0] in names}


# -- the values are /stats' -----------------------------------------------------------------


async def workload(nsqd: NSQD, http: Any) -> list[V2Client]:
    """20 messages to two channels: "ship" FINs 4, REQs 2 (one deferred), holds 4 in flight;
    "audit" lets one time out, then is paused. Returns the open connections."""
    assert nsqd.tcp_address is not None
    await http(nsqd.http_address, "POST", "/topic/create?topic=orders")
    for channel in ("ship", "audit"):
        await http(nsqd.http_address, "POST", f"/channel/create?topic=orders&channel={channel}")
    publisher = await V2Client.connect(nsqd.tcp_address)
    await publisher.mpub("orders", [b"order %02d" % i for i in range(20)])
    ship = await open_consumer(nsqd.tcp_address, "orders", "ship", rdy=10, msg_timeout=60_000)
    messages = await ship.read_messages(10)
    await ship.rdy(0)
    for message in messages[:4]:
        await ship.fin(message.id)
    await ship.req(messages[4].id, 0)
    await ship.req(messages[5].id, 60_000)
    audit = await open_consumer(nsqd.tcp_address, "orders", "audit", rdy=1)
    await audit.read_message()
    await audit.rdy(0)
    await ship.sync()
    channel = nsqd.topics["orders"].channels["audit"]
    await wait_until(lambda: channel.timeout_count == 1)  # --msg-timeout is 0.2 s here
    await http(nsqd.http_address, "POST", "/channel/pause?topic=orders&channel=audit")
    await http(nsqd.http_address, "POST", "/pub?topic=other", b"x")
    return [publisher, ship, audit]


async def test_every_topic_and_channel_value_equals_stats(make_nsqd: Any, http: Any) -> None:
    nsqd = await make_nsqd(msg_timeout=0.2, e2e_processing_latency_percentiles=(0.99, 0.95))
    clients = await workload(nsqd, http)
    document = await stats(http, nsqd)
    scraped = await scrape(http, nsqd)

    assert queue_series(scraped) == expected_from(document)
    ship = {"type": "channel", "topic": "orders", "channel": "ship", "paused": "false"}
    audit = {"type": "channel", "topic": "orders", "channel": "audit", "paused": "true"}
    # the workload reached the state it meant to
    assert scraped[key("nsq_in_flight_count", **ship)] == 4
    assert scraped[key("nsq_requeue_count", **ship)] == 2
    assert scraped[key("nsq_deferred_count", **ship)] == 1
    assert scraped[key("nsq_depth", **ship)] == 11  # 10 never sent, 1 requeued at once
    assert scraped[key("nsq_timeout_count", **audit)] == 1
    assert scraped[key("nsq_paused", **audit)] == 1
    assert scraped[key("nsq_topic_count")] == len(document["topics"]) == 3  # and sync#ephemeral
    assert scraped[key("nsq_server_clients")] == 3
    assert scraped[key("nsq_health")] == 1
    for client in clients:
        await client.aclose()


async def test_e2e_latency_is_stats_percentiles_as_a_summary_and_nsq_exporter_gauges(
    make_nsqd: Any, http: Any
) -> None:
    nsqd = await make_nsqd(e2e_processing_latency_percentiles=(0.99, 0.5, 0.99))
    assert nsqd.tcp_address is not None
    async with await open_consumer(nsqd.tcp_address, "t", "c", rdy=5) as consumer:
        await consumer.mpub("t", [b"a", b"b", b"c"])
        for message in await consumer.read_messages(3):
            await consumer.fin(message.id)
        await consumer.sync()
        topic = topic_stats(await stats(http, nsqd), "t")
        scraped = await scrape(http, nsqd)
    [channel] = topic["channels"]
    for quantile, percentile in zip(
        ("0.99", "0.5", "0.99"), channel["e2e_processing_latency"]["percentiles"], strict=True
    ):
        labels = {"type": "channel", "topic": "t", "channel": "c", "quantile": quantile}
        summary = scraped[key("nsq_e2e_processing_latency_seconds", **labels)]
        assert summary == pytest.approx(percentile["value"] / 1e9)
        assert 0 < summary < 5
    labels = {"type": "topic", "topic": "t", "quantile": "0.99"}
    first = topic["e2e_processing_latency"]["percentiles"][0]["value"]
    assert scraped[key("nsq_e2e_processing_latency_seconds", **labels)] == pytest.approx(
        first / 1e9
    )
    channel_labels = {"type": "channel", "topic": "t", "channel": "c", "paused": "false"}
    second = channel["e2e_processing_latency"]["percentiles"][1]["value"]
    assert scraped[key("nsq_e2e_latency_95p", **channel_labels)] == second  # ns, as nsq_exporter
    topic_labels = {"type": "topic", "topic": "t", "paused": "false"}
    assert scraped[key("nsq_e2e_latency_99_percentile", **topic_labels)] == first
    accept = [("Accept", "application/openmetrics-text; version=1.0.0")]
    om = await http(nsqd.http_address, "GET", "/metrics", headers=accept)
    families = {f.name: f for f in openmetrics_families(om.body.decode())}
    summary = families["nsq_e2e_processing_latency_seconds"]
    # 0.99 given twice is one series: 2 quantiles x topic and channel
    assert (summary.type, len(summary.samples)) == ("summary", 4)


async def test_without_e2e_percentiles_no_summary_and_the_compat_gauges_are_zero(
    make_nsqd: Any, http: Any
) -> None:
    nsqd = await make_nsqd()
    nsqd.get_topic("t").get_channel("c", 0.0)
    scraped = await scrape(http, nsqd)
    assert not any(name.startswith("nsq_e2e_processing") for name, _ in scraped)
    labels = {"type": "channel", "topic": "t", "channel": "c", "paused": "false"}
    assert scraped[key("nsq_e2e_latency_99p", **labels)] == 0


# -- formats --------------------------------------------------------------------------------


async def test_text_format_by_default_and_openmetrics_when_accept_asks(
    make_nsqd: Any, http: Any
) -> None:
    nsqd = await make_nsqd()
    nsqd.get_topic("t").get_channel("c", 0.0)
    plain = await http(nsqd.http_address, "GET", "/metrics")
    assert plain.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert b"# EOF" not in plain.body
    accept = "application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5"
    om = await http(nsqd.http_address, "GET", "/metrics", headers=[("Accept", accept)])
    assert om.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    assert om.body.endswith(b"# EOF\n")
    families = {f.name: f for f in openmetrics_families(om.body.decode())}
    assert families["nsq_depth"].type == "gauge"
    assert families["nsq_disk_corrupt_records"].type == "counter"
    assert families["nsq_disk_fsync_seconds"].type == "histogram"
    assert families["nsq"].type == "info"
    plain_series = series(plain.body.decode())
    for sample in families["nsq_depth"].samples:
        assert plain_series[(sample.name, frozenset(sample.labels.items()))] == sample.value


async def test_the_https_listener_serves_metrics(make_nsqd: Any, tmp_path: Path) -> None:
    certs: Certs = make_certs(tmp_path)
    nsqd = await make_nsqd(**tls_options(certs))
    assert nsqd.https_address is not None
    answer = await https_get(nsqd.https_address, "/metrics", certs.client_context())
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert key("nsq_health") in series(body.decode())


def test_prometheus_client_is_loaded_by_the_first_scrape_not_with_the_daemons() -> None:
    script = (
        "import sys, pnsq.nsqd.nsqd, pnsq.lookupd\n"
        "assert 'prometheus_client' not in sys.modules, 'loaded at import'\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr.decode()


async def test_daemon_health_version_and_process_metrics(make_nsqd: Any, http: Any) -> None:
    nsqd = await make_nsqd()
    scraped = await scrape(http, nsqd)
    assert scraped[key("nsq_health")] == 1
    assert scraped[key("nsq_info", version="1.3.0")] == 1
    assert scraped[key("process_resident_memory_bytes")] > 0
    assert scraped[key("process_open_fds")] > 0
    assert key("python_gc_collections_total", generation="0") in scraped
    nsqd.health = "NOK - No space left on device"
    assert (await scrape(http, nsqd))[key("nsq_health")] == 0


# -- per client -----------------------------------------------------------------------------


async def test_per_client_series_only_with_the_flag(make_nsqd: Any, http: Any) -> None:
    for flag in (False, True):
        nsqd = await make_nsqd(metrics_per_client=flag)
        assert nsqd.tcp_address is not None
        async with await open_consumer(
            nsqd.tcp_address, "t", "c", rdy=3, client_id="c1", hostname='host "one"\\'
        ) as consumer:
            await consumer.mpub("t", [b"1", b"2"])
            first, _ = await consumer.read_messages(2)
            await consumer.fin(first.id)
            await consumer.sync()
            [client] = topic_stats(await stats(http, nsqd), "t")["channels"][0]["clients"]
            scraped = await scrape(http, nsqd)
        per_client = {k: v for k, v in scraped.items() if k[0] in CLIENT_FIELDS}
        if not flag:
            assert per_client == {}
            continue
        labels = {
            "topic": "t",
            "channel": "c",
            "deflate": "false",
            "snappy": "false",
            "tls": "false",
            "client_id": "c1",
            "hostname": 'host "one"\\',  # escaped on the wire, the same once parsed
            "version": "V2",
            "remote_address": client["remote_address"],
        }
        assert per_client == {key(m, **labels): float(client[f]) for m, f in CLIENT_FIELDS.items()}
        assert per_client[key("nsq_client_finish_count", **labels)] == 1


# -- disk -----------------------------------------------------------------------------------


def fsync_histogram(scraped: Series) -> tuple[float, float, dict[str, float]]:
    """(count, sum, {le: cumulative count}) of nsq_disk_fsync_seconds."""
    buckets = {
        dict(labels)["le"]: value
        for (name, labels), value in scraped.items()
        if name == "nsq_disk_fsync_seconds_bucket"
    }
    count = scraped[key("nsq_disk_fsync_seconds_count")]
    return count, scraped[key("nsq_disk_fsync_seconds_sum")], buckets


def test_histogram_buckets_count_a_value_at_their_bound_as_prometheus_does() -> None:
    histogram = Histogram((0.001, 0.01))
    histogram.observe([0.001, 0.0011, 0.01, 20.0])
    assert histogram.cumulative() == [1, 3, 4]  # le="0.001", le="0.01", le="+Inf"
    assert histogram.sum == pytest.approx(20.0121)


async def test_fsync_histogram_observes_each_fsync_once(
    make_nsqd: Any, http: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        nonlocal calls
        real_fsync(fd)
        time.sleep(0.03)  # a slow disk, inside the disk task's worker thread
        calls += 1

    monkeypatch.setattr(disk_files.os, "fsync", slow_fsync)  # before nsqd: it sees every one
    nsqd = await make_nsqd(sync_every=1)  # durable: every publish waits for its fsync
    assert nsqd.tcp_address is not None
    async with await V2Client.connect(nsqd.tcp_address) as producer:
        for i in range(5):
            await producer.pub("t", b"durable %d" % i)
    assert calls >= 5  # each publish waited for a round of its own
    with trio.fail_after(10):  # a round still in its thread is counted once it is back
        while True:
            count, total, buckets = fsync_histogram(await scrape(http, nsqd))
            if count == calls:
                break
            await trio.sleep(0.05)  # polled over HTTP, as a scraper would
    assert buckets["+Inf"] == count
    assert buckets["0.025"] == 0  # every fsync took 30 ms or more
    assert total >= 0.03 * count


def record_offsets(data: bytes) -> list[int]:
    offsets, pos = [], 0
    while pos < len(data):
        assert data[pos : pos + 4] == MAGIC
        offsets.append(pos)
        pos += HEAD_SIZE + int.from_bytes(data[pos + 4 : pos + 8], "big")
    return offsets


async def test_corrupt_records_counter_counts_skipped_records(
    make_nsqd: Any, http: Any, tmp_path: Path
) -> None:
    data_path = tmp_path / "data"
    data_path.mkdir()
    first = await make_nsqd(mem_queue_size=0, data_path=str(data_path))
    assert first.tcp_address is not None
    async with await open_consumer(first.tcp_address, "t", "c", rdy=0) as consumer:
        await consumer.mpub("t", [b"message %03d" % i for i in range(20)])
    first.stop()
    await wait_until(lambda: first._lock_fd is None)
    segment = data_path / "t:c.diskqueue.000001.dat"
    data = bytearray(segment.read_bytes())
    offsets = record_offsets(data)
    data[offsets[3] + HEAD_SIZE + 5] ^= 0xFF  # two damaged bodies
    data[offsets[7] + HEAD_SIZE + 5] ^= 0xFF
    segment.write_bytes(bytes(data))

    second = await make_nsqd(data_path=str(data_path))
    assert second.tcp_address is not None
    async with await open_consumer(second.tcp_address, "t", "c", rdy=100) as consumer:
        for message in await consumer.read_messages(18):
            await consumer.fin(message.id)
        channel = second.topics["t"].channels["c"]
        await wait_until(lambda: channel.backend.corrupt_count == 2)
    scraped = await scrape(http, second)
    assert scraped[key("nsq_disk_corrupt_records_total")] == 2
    topic = topic_stats(await stats(http, second), "t")
    assert topic["channels"][0]["backend_corrupt_count"] == 2
