"""nsqd's GET /metrics families: which there are, and how /stats' numbers become their lines.

Names and labels are lovoo/nsq_exporter's (namespace ``nsq``, gauges, topic and channel series
in the same families told apart by the ``type`` label), so dashboards made for that exporter
keep working; pnsq adds the rest (docs/observability.md lists every one). The numbers are
those of /stats: ``scrape`` reads each topic with ``stats.topic_snapshot``, /stats' own code,
and this only renames and formats, so the two cannot disagree. Nothing is counted on the hot
path.

Series per topic, channel and client are ``LineFamily``s (written as lines once; see
``_internal.prometheus`` for why): ``specs`` gives, for each, the functions writing the lines
of a batch of topics (``Rows``), as ``scrape`` writes them a slice at a time. The few
daemon-wide families are ordinary prometheus_client ones. Latencies: the nsq_exporter gauges keep /stats' nanoseconds; the summary
``nsq_e2e_processing_latency_seconds`` is in seconds, as Prometheus names units, and has no
``_count``/``_sum``: NSQ's count covers the rolling window only, which is not a counter.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
)
from prometheus_client.metrics_core import Metric

from .. import NSQ_VERSION
from .._internal.prometheus import Exposition, go_float, label_text, number

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


class Rows:
    """The series of one slice: each topic's, channel's and client's labels and numbers."""

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


Lines = Callable[[Rows], list[str]]  # lines of a family for the rows of one slice
# A family's name, help, type and lines: those of every topic first, then every channel's, so
# a family of both types has two ``Lines``, each gathering its own part over the slices.
Spec = tuple[str, str, str, tuple[Lines, ...]]


def _column(name: str, key: str, series: Callable[[Rows], list[Row]]) -> Lines:
    """The /stats field ``key`` (an int) of every row: one comprehension, as a scrape writes
    some 40,000 such lines."""
    return lambda rows: [f"{name}{labels} {row[key]}\n" for labels, row in series(rows)]


_TOPICS, _CHANNELS, _CLIENTS = attrgetter("topics"), attrgetter("channels"), attrgetter("clients")


def _paused(series: Callable[[Rows], list[Row]]) -> Lines:
    return lambda rows: [
        f"nsq_paused{labels} {int(row['paused'])}\n" for labels, row in series(rows)
    ]


def _channel_count(rows: Rows) -> list[str]:
    return [f"nsq_channel_count{labels} {len(row['channels'])}\n" for labels, row in rows.topics]


def _queuespecs() -> list[Spec]:
    """The gauges of every topic and channel, nsq_exporter's and pnsq's."""
    specs: list[Spec] = [
        (name, text, "gauge", (_column(name, key, _TOPICS), _column(name, key, _CHANNELS)))
        for name, key, text in _SHARED
    ]
    specs += [(n, text, "gauge", (_column(n, key, _TOPICS),)) for n, key, text in _TOPIC]
    specs += [(n, text, "gauge", (_column(n, key, _CHANNELS),)) for n, key, text in _CHANNEL]
    paused = (_paused(_TOPICS), _paused(_CHANNELS))
    return [
        *specs,
        ("nsq_paused", "1 if the topic or channel is paused, else 0", "gauge", paused),
        ("nsq_channel_count", "Channels of the topic", "gauge", (_channel_count,)),
    ]


def _compat_latency(name: str, series: Callable[[Rows], list[Row]], index: int | None) -> Lines:
    """Lines of an nsq_exporter E2E gauge: the ``index``-th configured percentile, else 0."""
    if index is None:
        return lambda rows: [f"{name}{labels} 0\n" for labels, _ in series(rows)]
    return lambda rows: [
        f"{name}{labels} {number(_percentile(row['e2e_processing_latency'], index))}\n"
        for labels, row in series(rows)
    ]


def _compatspecs(configured: bool) -> list[Spec]:
    """nsq_exporter's E2E gauges: the first and second configured percentile (ns), else 0."""
    specs: list[Spec] = []
    for suffix, which, series, index in _COMPAT_LATENCIES:
        name = f"nsq_e2e_latency_{suffix}"
        selected = _TOPICS if series == "topic" else _CHANNELS
        text = f"E2E processing latency (ns), {which} configured percentile"
        lines = _compat_latency(name, selected, index if configured else None)
        specs.append((name, text, "gauge", (lines,)))
    return specs


def _summary(rows: Rows) -> list[str]:
    """The configured percentiles of every topic and channel, in seconds."""
    lines = []
    for labels, stats in rows.e2e:
        seen = set()  # a percentile given twice is one series: Prometheus refuses duplicates
        for percentile in stats["e2e_processing_latency"]["percentiles"] or ():
            quantile = go_float(percentile["quantile"])
            if quantile not in seen:
                seen.add(quantile)
                value = number(percentile["value"] / 1e9)
                lines.append(f'{_SUMMARY}{{{labels},quantile="{quantile}"}} {value}\n')
    return lines


_SUMMARY = "nsq_e2e_processing_latency_seconds"


def specs(configured: bool, per_client: bool) -> list[Spec]:
    """Every family with a line per topic, channel or client, in the order of the output."""
    specs = [*_queuespecs(), *_compatspecs(configured)]
    if configured:
        specs.append((_SUMMARY, _E2E_HELP, "summary", (_summary,)))
    if per_client:
        specs += [(n, text, "gauge", (_column(n, key, _CLIENTS),)) for n, key, text in _CLIENT]
    return specs


def _client_labels(topic: str, channel: str, client: Json) -> str:
    pairs = [("topic", topic), ("channel", channel)]
    pairs += [(key, _label_value(client[key])) for key in _CLIENT_LABELS]
    return label_text(pairs)


def exposition(nsqd: Broker) -> Exposition:
    """``nsqd``'s registry: process, GC and platform metrics (``scrape`` adds nsqd's own)."""
    return Exposition()


def daemon_families(nsqd: Broker, topic_count: int) -> list[Metric]:
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
