"""nsqd's GET /metrics: the collector that reads the live state into Prometheus families.

Names and labels are lovoo/nsq_exporter's (namespace ``nsq``, gauges, topic and channel series
in the same families told apart by the ``type`` label), so dashboards made for that exporter
keep working; pnsq adds the rest (docs/observability.md lists every one). The numbers are
those of /stats: the collector calls ``stats.topics_stats``, the function behind /stats, and
only renames and formats, so the two cannot disagree. Nothing is counted on the hot path.

Series per topic, channel and client are ``LineFamily``s (written as lines once; see
``_internal.prometheus`` for why), the few daemon-wide ones ordinary prometheus_client
families. Latencies: the nsq_exporter gauges keep /stats' nanoseconds; the summary
``nsq_e2e_processing_latency_seconds`` is in seconds, as Prometheus names units, and has no
``_count``/``_sum``: NSQ's count covers the rolling window only, which is not a counter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
)
from prometheus_client.metrics_core import Metric

from .. import NSQ_VERSION
from .._internal.prometheus import LineFamily, go_float, label_text
from .stats import topics_stats

if TYPE_CHECKING:
    from .broker import Broker

Json = dict[str, Any]
Fields = tuple[tuple[str, str, str], ...]  # (metric name, /stats key, help)

_SHARED: Fields = (
    ("nsq_depth", "depth", "Messages queued, in memory and on disk (/stats depth)"),
    ("nsq_backend_depth", "backend_depth", "Messages queued on disk (/stats backend_depth)"),
    ("nsq_message_count", "message_count", "Messages taken in since nsqd started"),
)
_TOPIC: Fields = (
    ("nsq_message_bytes", "message_bytes", "Bytes of message bodies published to the topic"),
)
_CHANNEL: Fields = (
    ("nsq_in_flight_count", "in_flight_count", "Messages sent to a consumer, not yet answered"),
    ("nsq_deferred_count", "deferred_count", "Messages waiting for their deferred delivery time"),
    ("nsq_requeue_count", "requeue_count", "Messages requeued (REQ) since nsqd started"),
    ("nsq_timeout_count", "timeout_count", "Messages whose in-flight timeout expired"),
    ("nsq_client_count", "client_count", "Consumers subscribed to the channel"),
)
_CLIENT: Fields = (
    ("nsq_client_ready_count", "ready_count", "The consumer's RDY count"),
    ("nsq_client_in_flight_count", "in_flight_count", "Messages in flight to the consumer"),
    ("nsq_client_message_count", "message_count", "Messages sent to the consumer"),
    ("nsq_client_finish_count", "finish_count", "Messages the consumer finished (FIN)"),
    ("nsq_client_requeue_count", "requeue_count", "Messages the consumer requeued (REQ)"),
    ("nsq_client_state", "state", "Connection state (NSQ's numbers: 3 = subscribed)"),
    ("nsq_client_connect_ts", "connect_ts", "When the consumer connected (Unix seconds)"),
)
_CLIENT_LABELS = ("deflate", "snappy", "tls", "client_id", "hostname", "version", "remote_address")
# nsq_exporter's latency gauges: topic (first, second percentile), then channel.
_COMPAT_LATENCIES = (
    ("99_percentile", "topic, first"),
    ("95_percentile", "topic, second"),
    ("99p", "channel, first"),
    ("95p", "channel, second"),
)
_E2E_HELP = "E2E processing latency, publish to FIN, over --e2e-processing-latency-window-time"


def _percentile(e2e: Json, index: int) -> float:
    """nsq_exporter's compat value: the ``index``-th configured percentile (ns), else 0."""
    percentiles = e2e["percentiles"] or ()
    return float(percentiles[index]["value"]) if index < len(percentiles) else 0


class _Families:
    """The per-topic, per-channel and per-client families of one scrape."""

    def __init__(self, per_client: bool, summary: bool) -> None:
        shared = [(LineFamily(name, text), key) for name, key, text in _SHARED]
        self.topic_fields = shared + [(LineFamily(name, text), key) for name, key, text in _TOPIC]
        self.channel_fields = shared + [(LineFamily(n, text), key) for n, key, text in _CHANNEL]
        self.clients = [(LineFamily(n, text), key) for n, key, text in _CLIENT if per_client]
        self.paused = LineFamily("nsq_paused", "1 if the topic or channel is paused, else 0")
        self.channel_count = LineFamily("nsq_channel_count", "Channels of the topic")
        self.latencies = [
            LineFamily(
                f"nsq_e2e_latency_{name}", f"E2E latency (ns), {which} configured percentile"
            )
            for name, which in _COMPAT_LATENCIES
        ]
        self.summary = (
            LineFamily("nsq_e2e_processing_latency_seconds", _E2E_HELP, "summary")
            if summary
            else None
        )

    def all(self) -> list[LineFamily]:
        pairs = self.topic_fields + self.channel_fields[len(_SHARED) :] + self.clients
        families = [family for family, _ in pairs] + [self.paused, self.channel_count]
        return families + self.latencies + ([self.summary] if self.summary else [])

    def topic(self, topic: Json) -> None:
        name = topic["topic_name"]
        paused = topic["paused"]
        # Topic and channel names are NSQ names ([.a-zA-Z0-9_-], #ephemeral): nothing to escape.
        labels = f'{{type="topic",topic="{name}",paused="{_BOOL[paused]}"}}'
        for family, key in self.topic_fields:
            family.add(labels, topic[key])
        self.paused.add(labels, int(paused))
        self.channel_count.add(labels, len(topic["channels"]))
        e2e = topic["e2e_processing_latency"]
        self.latencies[0].add(labels, _percentile(e2e, 0))
        self.latencies[1].add(labels, _percentile(e2e, 1))
        self._summary(f'type="topic",topic="{name}"', e2e)
        for channel in topic["channels"]:
            self.channel(name, channel)

    def channel(self, topic: str, channel: Json) -> None:
        name = channel["channel_name"]
        paused = channel["paused"]
        labels = f'{{type="channel",topic="{topic}",channel="{name}",paused="{_BOOL[paused]}"}}'
        for family, key in self.channel_fields:
            family.add(labels, channel[key])
        self.paused.add(labels, int(paused))
        e2e = channel["e2e_processing_latency"]
        self.latencies[2].add(labels, _percentile(e2e, 0))
        self.latencies[3].add(labels, _percentile(e2e, 1))
        self._summary(f'type="channel",topic="{topic}",channel="{name}"', e2e)
        if self.clients:
            for client in channel["clients"] or ():
                self.client(topic, name, client)

    def client(self, topic: str, channel: str, client: Json) -> None:
        pairs = [("topic", topic), ("channel", channel)]
        pairs += [(key, _label_value(client[key])) for key in _CLIENT_LABELS]
        labels = label_text(pairs)
        for family, key in self.clients:
            family.add(labels, client[key])

    def _summary(self, labels: str, e2e: Json) -> None:
        if self.summary is None:
            return
        for percentile in e2e["percentiles"] or ():
            quantile = go_float(percentile["quantile"])
            self.summary.add(f'{{{labels},quantile="{quantile}"}}', percentile["value"] / 1e9)


_BOOL = {True: "true", False: "false"}


def _label_value(value: object) -> str:
    """Go's formatting of a /stats value as nsq_exporter labels it (booleans lower case)."""
    return _BOOL[value] if isinstance(value, bool) else str(value)


class NSQDCollector:
    """The nsqd families, read from ``nsqd`` at every ``collect`` (a scrape)."""

    def __init__(self, nsqd: Broker) -> None:
        self._nsqd = nsqd

    def collect(self) -> list[Metric]:
        nsqd = self._nsqd
        options = nsqd.options
        per_client = options.metrics_per_client
        topics = topics_stats(nsqd, "", "", per_client, nsqd.now()) or []
        families = _Families(per_client, bool(options.e2e_processing_latency_percentiles))
        for topic in topics:
            families.topic(topic)
        return [*families.all(), *_daemon(nsqd, len(topics))]


def _daemon(nsqd: Broker, topic_count: int) -> list[Metric]:
    """The daemon-wide families: few samples, so prometheus_client's own."""
    disk = nsqd.disk
    histogram = disk.fsync_seconds
    bounds = [*map(go_float, histogram.bounds), "+Inf"]
    fsyncs = HistogramMetricFamily(
        "nsq_disk_fsync_seconds",
        "Duration of each fsync of the disk queues' files and metadata",
        buckets=list(zip(bounds, histogram.cumulative(), strict=True)),
        sum_value=histogram.sum,
    )
    return [
        InfoMetricFamily("nsq", "The NSQ version this nsqd speaks", value={"version": NSQ_VERSION}),
        GaugeMetricFamily("nsq_topic_count", "Topics on this nsqd", value=topic_count),
        GaugeMetricFamily(
            "nsq_health", "1 if healthy (/ping says OK), else 0", value=_health(nsqd)
        ),
        GaugeMetricFamily("nsq_server_clients", "Open TCP connections", value=len(nsqd.clients)),
        fsyncs,
        CounterMetricFamily(
            "nsq_disk_corrupt_records",
            "Damaged disk queue records skipped since nsqd started",
            value=disk.corrupt_records,
        ),
    ]


def _health(nsqd: Broker) -> int:
    return 1 if nsqd.health == "OK" else 0
