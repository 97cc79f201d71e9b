"""The statsd lines of one push, as Go nsqd 1.3 writes them (nsqd/statsd.go), without I/O.

Pure functions of the /stats snapshot (``stats.topics_stats`` without clients, and
``stats.memory_stats``) and of the previous push's, so a test can check every line. Counters
(``c``) are the increase since the previous push, gauges (``g``) the value now; names, types and
order are Go's (topics and channels by name). Lines are ``<prefix><name>:<value>|<type>\\n``,
packed whole into datagrams (Go's ``BoundaryBufferedWriter`` over a ``bufio.Writer``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ..wire.names import is_ephemeral

Json = dict[str, Any]
Metric = tuple[str, int, str]  # name without the prefix, value, statsd type

BUFIO_DEFAULT_SIZE = 4096  # Go's bufio.NewWriterSize takes a size <= 0 as its default

# Go nsqd's names (nsqd/statsd.go) and statsd types, in the order it sends them.
TOPIC_NAMES = (
    ("message_count", "c"),
    ("message_bytes", "c"),
    ("depth", "g"),
    ("backend_depth", "g"),
)
CHANNEL_NAMES = (
    ("message_count", "c"),
    ("depth", "g"),
    ("backend_depth", "g"),
    ("in_flight_count", "g"),
    ("deferred_count", "g"),
    ("requeue_count", "c"),
    ("timeout_count", "c"),
    ("clients", "g"),
)
MEM_NAMES = (
    ("heap_objects", "g"),
    ("heap_idle_bytes", "g"),
    ("heap_in_use_bytes", "g"),
    ("heap_released_bytes", "g"),
    ("gc_pause_usec_100", "g"),
    ("gc_pause_usec_99", "g"),
    ("gc_pause_usec_95", "g"),
    ("next_gc_bytes", "g"),
    ("gc_runs", "c"),
)
# /stats field for a statsd name where they differ
_FIELDS = {"clients": "client_count", "gc_runs": "gc_total_runs"}


def statsd_prefix(template: str, broadcast_address: str, http_port: int) -> str:
    """Go's: ``%s`` becomes ``JoinHostPort(broadcast_address, http_port)`` with ``.`` and ``:``
    as ``_`` (``[::1]:4151`` -> ``[__1]_4151``), and a non-empty prefix ends in ``.``."""
    if not template:
        return ""
    host = f"[{broadcast_address}]" if ":" in broadcast_address else broadcast_address
    key = f"{host}:{http_port}".replace(".", "_").replace(":", "_")
    prefix = template.replace("%s", key)
    return prefix if prefix.endswith(".") else prefix + "."


def percentile_suffix(quantile: float) -> str:
    """Go's ``%.0f`` of ``quantile*100``: 0.99 -> ``99``, 0.999 -> ``100``, 0.5 -> ``50``."""
    return "%.0f" % (quantile * 100.0)


def _e2e(path: str, stats: Json, configured: tuple[float, ...]) -> Iterator[Metric]:
    """The percentiles; with none measured yet, 0 for each ``configured`` one, as Go's empty
    quantile stream answers 0 (a channel has one whenever percentiles are configured, a topic
    once it has a channel)."""
    items = stats["e2e_processing_latency"]["percentiles"] or [
        {"quantile": quantile, "value": 0.0} for quantile in configured
    ]
    for item in items:
        name = f"{path}.e2e_processing_latency_{percentile_suffix(item['quantile'])}"
        yield name, int(item["value"]), "g"


def _values(
    path: str, names: tuple[tuple[str, str], ...], now: Json, last: Json
) -> Iterator[Metric]:
    for name, kind in names:
        key = _FIELDS.get(name, name)
        value = now[key] - last.get(key, 0) if kind == "c" else now[key]
        yield f"{path}.{name}" if path else name, value, kind


def metrics(
    topics: list[Json],
    last: dict[str, Json],
    exclude_ephemeral: bool,
    percentiles: tuple[float, ...] = (),
) -> Iterator[Metric]:
    """``(name, value, type)`` for every topic and channel, counters against ``last`` (the
    previous push's topics by name, channels by name under ``"channels_by_name"``);
    ``percentiles`` are --e2e-processing-latency-percentile's."""
    for topic in topics:
        if exclude_ephemeral and is_ephemeral(topic["topic_name"]):
            continue
        path = f"topic.{topic['topic_name']}"
        last_topic = last.get(topic["topic_name"], {})
        yield from _values(path, TOPIC_NAMES, topic, last_topic)
        yield from _e2e(path, topic, percentiles if topic["channels"] else ())
        last_channels = last_topic.get("channels_by_name", {})
        for channel in topic["channels"]:
            if exclude_ephemeral and is_ephemeral(channel["channel_name"]):
                continue
            channel_path = f"{path}.channel.{channel['channel_name']}"
            last_channel = last_channels.get(channel["channel_name"], {})
            yield from _values(channel_path, CHANNEL_NAMES, channel, last_channel)
            yield from _e2e(channel_path, channel, percentiles)


def memory_metrics(memory: Json, last: Json) -> Iterator[Metric]:
    """The ``mem.*`` lines, from /stats' ``memory`` (its docstring maps Go's fields)."""
    yield from _values("mem", MEM_NAMES, memory, last)


def by_name(topics: list[Json]) -> dict[str, Json]:
    """A push's topics indexed for the next one's counter deltas."""
    return {
        t["topic_name"]: {**t, "channels_by_name": {c["channel_name"]: c for c in t["channels"]}}
        for t in topics
    }


def lines(prefix: str, metrics: Iterable[Metric]) -> Iterator[bytes]:
    for name, value, kind in metrics:
        yield f"{prefix}{name}:{value}|{kind}\n".encode()


def packets(lines: Iterable[bytes], size: int) -> list[bytes]:
    """Whole lines packed into datagrams of at most ``size`` bytes; a line longer than
    ``size`` goes alone (Go's ``BoundaryBufferedWriter`` over a ``bufio.Writer``)."""
    size = size if size > 0 else BUFIO_DEFAULT_SIZE
    out: list[bytes] = []
    buffer = bytearray()
    for line in lines:
        if len(line) > size - len(buffer) and buffer:
            out.append(bytes(buffer))
            buffer.clear()
        if len(line) > size:
            out.append(line)
        else:
            buffer += line
    if buffer:
        out.append(bytes(buffer))
    return out
