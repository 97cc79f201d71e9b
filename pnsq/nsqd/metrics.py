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
from .._internal.prometheus import Exposition, LineFamily, go_float, label_text, number
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
# nsq_exporter's latency gauges: name suffix, help, series, index of the percentile.
_COMPAT_LATENCIES = (
    ("99_percentile", "topic, first", "topic", 0),
    ("95_percentile", "topic, second", "topic", 1),
    ("99p", "channel, first", "channel", 0),
    ("95p", "channel, second", "channel", 1),
)
_E2E_HELP = "E2E processing latency, publish to FIN, over --e2e-processing-latency-window-time"


_BOOL = {True: "true", False: "false"}


def _label_value(value: object) -> str:
    """Go's formatting of a /stats value as nsq_exporter labels it (booleans lower case)."""
    return _BOOL[value] if isinstance(value, bool) else str(value)


def _percentile(e2e: Json, index: int) -> float:
    """nsq_exporter's compat value: the ``index``-th configured percentile (ns), else 0."""
    percentiles = e2e["percentiles"] or ()
    return float(percentiles[index]["value"]) if index < len(percentiles) else 0


Row = tuple[str, Json]  # a series' label text and its /stats object


class _Rows:
    """The series of one scrape: each topic's, channel's and client's labels and numbers."""

    def __init__(self, topics: list[Json], per_client: bool, e2e: bool) -> None:
        self.topics: list[Row] = []
        self.channels: list[Row] = []
        self.clients: list[Row] = []
        self.e2e: list[Row] = []  # the summary's labels (no paused, no braces yet)
        # Topic and channel names are NSQ names ([.a-zA-Z0-9_-], #ephemeral): nothing to escape.
        for topic in topics:
            name = topic["topic_name"]
            paused = _BOOL[topic["paused"]]
            self.topics.append((f'{{type="topic",topic="{name}",paused="{paused}"}}', topic))
            if e2e:
                self.e2e.append((f'type="topic",topic="{name}"', topic))
            for channel in topic["channels"]:
                channel_name = channel["channel_name"]
                paused = _BOOL[channel["paused"]]
                labels = (
                    f'{{type="channel",topic="{name}",channel="{channel_name}",paused="{paused}"}}'
                )
                self.channels.append((labels, channel))
                if e2e:
                    self.e2e.append(
                        (f'type="channel",topic="{name}",channel="{channel_name}"', channel)
                    )
                if per_client:
                    self.clients += [
                        (_client_labels(name, channel_name, client), client)
                        for client in channel["clients"] or ()
                    ]


def _column(name: str, text: str, rows: list[Row], key: str) -> LineFamily:
    """A family of the /stats field ``key`` (an int) of every row: one comprehension, as a
    scrape writes some 40,000 such lines."""
    return LineFamily(name, text, lines=[f"{name}{labels} {row[key]}\n" for labels, row in rows])


def _queue_families(rows: _Rows) -> list[LineFamily]:
    """The gauges of every topic and channel, nsq_exporter's and pnsq's."""
    both = rows.topics + rows.channels
    families = [_column(name, text, both, key) for name, key, text in _SHARED]
    families += [_column(name, text, rows.topics, key) for name, key, text in _TOPIC]
    families += [_column(name, text, rows.channels, key) for name, key, text in _CHANNEL]
    paused = [f"nsq_paused{labels} {int(row['paused'])}\n" for labels, row in both]
    counts = [f"nsq_channel_count{labels} {len(row['channels'])}\n" for labels, row in rows.topics]
    return [
        *families,
        LineFamily("nsq_paused", "1 if the topic or channel is paused, else 0", lines=paused),
        LineFamily("nsq_channel_count", "Channels of the topic", lines=counts),
    ]


def _compat_latencies(rows: _Rows, configured: bool) -> list[LineFamily]:
    """nsq_exporter's E2E gauges: the first and second configured percentile (ns), else 0."""
    families = []
    for suffix, which, series, index in _COMPAT_LATENCIES:
        name = f"nsq_e2e_latency_{suffix}"
        selected = rows.topics if series == "topic" else rows.channels
        if configured:
            lines = [
                f"{name}{labels} {number(_percentile(row['e2e_processing_latency'], index))}\n"
                for labels, row in selected
            ]
        else:
            lines = [f"{name}{labels} 0\n" for labels, _ in selected]
        text = f"E2E processing latency (ns), {which} configured percentile"
        families.append(LineFamily(name, text, lines=lines))
    return families


def _summary(rows: _Rows) -> LineFamily:
    """The configured percentiles of every topic and channel, in seconds."""
    family = LineFamily("nsq_e2e_processing_latency_seconds", _E2E_HELP, "summary")
    for labels, stats in rows.e2e:
        seen = set()  # a percentile given twice is one series: Prometheus refuses duplicates
        for percentile in stats["e2e_processing_latency"]["percentiles"] or ():
            quantile = go_float(percentile["quantile"])
            if quantile not in seen:
                seen.add(quantile)
                family.add(f'{{{labels},quantile="{quantile}"}}', percentile["value"] / 1e9)
    return family


def _client_families(rows: _Rows) -> list[LineFamily]:
    return [_column(name, text, rows.clients, key) for name, key, text in _CLIENT]


def _client_labels(topic: str, channel: str, client: Json) -> str:
    pairs = [("topic", topic), ("channel", channel)]
    pairs += [(key, _label_value(client[key])) for key in _CLIENT_LABELS]
    return label_text(pairs)


def exposition(nsqd: Broker) -> Exposition:
    """``nsqd``'s registry: process, GC and platform metrics, and its own collector."""
    return Exposition(NSQDCollector(nsqd))


class NSQDCollector:
    """The nsqd families, read from ``nsqd`` at every ``collect`` (a scrape)."""

    def __init__(self, nsqd: Broker) -> None:
        self._nsqd = nsqd

    def collect(self) -> list[Metric]:
        nsqd = self._nsqd
        options = nsqd.options
        per_client = options.metrics_per_client
        topics = topics_stats(nsqd, "", "", per_client, nsqd.now()) or []
        configured = bool(options.e2e_processing_latency_percentiles)
        rows = _Rows(topics, per_client, configured)
        families: list[Metric] = [*_queue_families(rows), *_compat_latencies(rows, configured)]
        if configured:
            families.append(_summary(rows))
        if per_client:
            families += _client_families(rows)
        return families + _daemon(nsqd, len(topics))


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
