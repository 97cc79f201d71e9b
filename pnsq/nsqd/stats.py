"""What /stats shows: the JSON document of reference §3.3 and the text page of §3.4.

Pure functions of the broker's state (no awaits, no I/O but reading the process's own
counters), so an answer is a consistent snapshot and nsqadmin-like code can reuse them. Field
names, order and Go's null conventions are NSQ's, because nsqadmin, nsq_stat and exporters
parse them: a nil slice is ``null`` (no producers, clients left out, a topic filter matching
nothing), an empty one ``[]`` (a topic without channels).

Python has no Go heap, so ``memory`` reports the nearest honest equivalents, all cheap to read
(``len(gc.get_objects())`` would walk the whole heap):

- ``heap_objects``: ``sys.getallocatedblocks()``, the blocks the object allocator holds;
- ``heap_in_use_bytes``: the resident set size (/proc/self/statm, else peak RSS from getrusage);
- ``heap_idle_bytes``, ``heap_released_bytes``, ``next_gc_bytes``: 0, no such thing here;
- ``gc_pause_usec_*``: percentiles of the last 256 collections, timed by a ``gc.callbacks`` hook
  installed when this module is imported (as Go keeps its last 256 pauses);
- ``gc_total_runs``: collections of all generations (``gc.get_stats()``).
"""

from __future__ import annotations

import gc
import math
import os
import platform
import resource
import sys
import time
from collections import deque
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .. import NSQ_VERSION
from .._internal.duration import format_duration_ns
from .quantile import Quantile, e2e_stats

if TYPE_CHECKING:
    from .broker import Broker
    from .channel import Channel
    from .client_v2 import ClientV2
    from .topic import Topic

Json = dict[str, Any]


# -- the JSON document --------------------------------------------------------------------------


def stats_document(
    nsqd: Broker,
    *,
    topic: str = "",
    channel: str = "",
    include_clients: bool = True,
    include_mem: bool = True,
) -> Json:
    """The /stats?format=json document; ``topic``/``channel`` filter by exact name ("" = all)."""
    document: Json = {
        "version": NSQ_VERSION,
        "health": nsqd.health,
        "start_time": nsqd.start_time,
        "state": nsqd.state,  # pnsq's: running, draining or exiting (NSQ PR #1305)
        "topics": topics_stats(nsqd, topic, channel, include_clients, nsqd.now()),
    }
    if include_mem:
        document["memory"] = memory_stats()
    document["producers"] = producers_stats(nsqd, topic) if include_clients else None
    return document


def topics_stats(
    nsqd: Broker, topic: str, channel: str, include_clients: bool, now: float
) -> list[Json] | None:
    """Topics sorted by name; None when ``topic`` names no topic (as NSQ)."""
    if topic:
        if topic not in nsqd.topics:
            return None
        topics = [nsqd.topics[topic]]
    else:
        topics = sorted(nsqd.topics.values(), key=lambda t: t.name)
    percentiles = nsqd.options.e2e_processing_latency_percentiles
    out = []
    for t in topics:
        stats = topic_snapshot(t, include_clients, percentiles, now, topic, channel)
        if stats is not None:
            out.append(stats)
    return out


def topic_snapshot(
    t: Topic,
    include_clients: bool,
    percentiles: tuple[float, ...],
    now: float,
    topic_filter: str = "",
    channel: str = "",
) -> Json | None:
    """One topic and its channels as /stats shows them (/metrics snapshots topic by topic
    with it); None when ``channel`` names none of its channels (a filter skips the topic)."""
    if channel and channel not in t.channels:
        return None
    names = [channel] if channel else sorted(t.channels)
    channels = [
        channel_stats(t.channels[name], include_clients, topic_filter, percentiles, now)
        for name in names
    ]
    quantiles = [c.e2e for c in t.channels.values() if c.e2e is not None]
    return topic_stats(t, channels, e2e_stats(quantiles, percentiles, now))


def topic_stats(topic: Topic, channels: list[Json], e2e: Json) -> Json:
    return {
        "topic_name": topic.name,
        "channels": channels,
        "depth": topic.depth(),
        "backend_depth": topic.backend.depth(),
        "message_count": topic.message_count,
        "message_bytes": topic.message_bytes,
        "paused": topic.paused,
        "e2e_processing_latency": e2e,
        # pnsq's own, after NSQ's keys: damaged disk records skipped (and logged)
        "backend_corrupt_count": topic.backend.corrupt_count,
    }


def channel_stats(
    channel: Channel,
    include_clients: bool,
    topic_filter: str = "",
    percentiles: tuple[float, ...] = (),
    now: float = 0.0,
) -> Json:
    """One channel; ``percentiles`` and ``now`` give its e2e processing latency."""
    quantiles: list[Quantile] = [channel.e2e] if channel.e2e is not None else []
    clients = None
    if include_clients:
        ordered = sorted(channel.clients.values(), key=lambda c: c.id)
        clients = [client_stats(c, topic_filter) for c in ordered]
    return {
        "channel_name": channel.name,
        "depth": channel.depth(),
        "backend_depth": channel.backend.depth(),
        "in_flight_count": len(channel.in_flight),
        "deferred_count": len(channel.deferred),
        "message_count": channel.message_count,
        "requeue_count": channel.requeue_count,
        "timeout_count": channel.timeout_count,
        "client_count": len(channel.clients),
        "clients": clients,
        "paused": channel.paused,
        "e2e_processing_latency": e2e_stats(quantiles, percentiles, now),
        "backend_corrupt_count": channel.backend.corrupt_count,
    }


def client_stats(client: ClientV2, topic_filter: str = "") -> Json:
    """One TCP client; ``pub_counts`` (left out when empty) only for ``topic_filter`` if set."""
    stats: Json = {
        "client_id": client.client_id,
        "hostname": client.hostname,
        "version": "V2",
        "remote_address": client.remote_address,
        "state": int(client.state),
        "ready_count": client.ready_count,
        "in_flight_count": client.in_flight_count,
        "message_count": client.message_count,
        "finish_count": client.finish_count,
        "requeue_count": client.requeue_count,
        "connect_ts": client.connect_ts,
        "sample_rate": client.sample_rate,
        "deflate": client.deflate,
        "snappy": client.snappy,
        "user_agent": client.user_agent,
        **_auth_stats(client),
        "topology_zone": client.topology_zone,
        "topology_region": client.topology_region,
    }
    counts = client.pub_counts
    names = [topic_filter] if topic_filter in counts else [] if topic_filter else sorted(counts)
    if names:
        stats["pub_counts"] = [{"topic": name, "count": counts[name]} for name in names]
    stats.update(client.tls or _NO_TLS)
    return stats


def _auth_stats(client: ClientV2) -> Json:
    """NSQ's ``authed``, ``auth_identity``, ``auth_identity_url``: each left out when empty."""
    state = client.auth_state
    if state is None:
        return {}
    fields: Json = {
        "authed": client.authed,
        "auth_identity": state.identity,
        "auth_identity_url": state.identity_url,
    }
    return {key: value for key, value in fields.items() if value}


_NO_TLS: Json = {
    "tls": False,
    "tls_cipher_suite": "",
    "tls_version": "",
    "tls_negotiated_protocol": "",
    "tls_negotiated_protocol_is_mutual": False,
}


def producers_stats(nsqd: Broker, topic_filter: str = "") -> list[Json] | None:
    """TCP clients that have published, in connection order; None when there are none."""
    producers = [c for _, c in sorted(nsqd.clients.items()) if c.pub_counts]
    return [client_stats(c, topic_filter) for c in producers] or None


# -- memory -------------------------------------------------------------------------------------


class _GcPauses:
    """A ``gc.callbacks`` hook keeping the durations (ns) of the last 256 collections."""

    def __init__(self) -> None:
        self.pauses: deque[int] = deque(maxlen=256)
        self._started = 0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter_ns()
        else:
            self.pauses.append(time.perf_counter_ns() - self._started)

    def percentile_usec(self, percent: float) -> int:
        """Go nsqd's nearest-rank percentile of the pauses, in microseconds."""
        ordered = sorted(self.pauses)
        if not ordered:
            return 0
        index = min(math.floor(percent / 100 * len(ordered) + 0.5), len(ordered) - 1)
        return ordered[index] // 1000


_GC_PAUSES = _GcPauses()
gc.callbacks.append(_GC_PAUSES)


def _resident_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def memory_stats() -> Json:
    """The ``memory`` object, with the Python equivalents described in the module docstring."""
    return {
        "heap_objects": sys.getallocatedblocks(),
        "heap_idle_bytes": 0,
        "heap_in_use_bytes": _resident_bytes(),
        "heap_released_bytes": 0,
        "gc_pause_usec_100": _GC_PAUSES.percentile_usec(100),
        "gc_pause_usec_99": _GC_PAUSES.percentile_usec(99),
        "gc_pause_usec_95": _GC_PAUSES.percentile_usec(95),
        "next_gc_bytes": 0,
        "gc_total_runs": sum(generation["collections"] for generation in gc.get_stats()),
    }


# -- the text page --------------------------------------------------------------------------------


def stats_text(document: Json, now: float) -> str:
    """The default /stats page (§3.4) rendered from ``stats_document``; ``now`` is Unix time."""
    start = document["start_time"]
    lines = [
        f"nsqd v{document['version']} (built w/python{platform.python_version()})",
        f"start_time {_rfc3339(start)}",
        f"uptime {format_duration_ns(round((now - start) * 1e9))}",
        "",
        f"Health: {document['health']}",
    ]
    if document.get("state", "running") != "running":
        lines.append(f"State: {document['state']}")
    memory = document.get("memory")
    if memory is not None:
        lines += ["", "Memory:", *(f"   {key:<25}\t{value}" for key, value in memory.items())]
    topics = document["topics"] or []
    lines += ["", "Topics:" if topics else "Topics: None"]
    for topic in topics:
        lines += _topic_lines(topic, now)
    producers = document["producers"] or []
    lines += ["", "Producers:" if producers else "Producers: None"]
    lines += [f"   {_client_line(p, now)}" for p in producers]
    return "\n".join(lines) + "\n"


def _topic_lines(topic: Json, now: float) -> list[str]:
    paused = "*P " if topic["paused"] else "   "
    head = (
        f"{paused}[{topic['topic_name']:<15}] depth: {topic['depth']:<5} "
        f"be-depth: {topic['backend_depth']:<5} msgs: {topic['message_count']:<8} "
        f"e2e%: {_e2e(topic)}"
    )
    lines = ["", head]
    for c in topic["channels"]:
        paused = "   *P " if c["paused"] else "      "
        lines.append(
            f"{paused}[{c['channel_name']:<25}] depth: {c['depth']:<5} "
            f"be-depth: {c['backend_depth']:<5} inflt: {c['in_flight_count']:<4} "
            f"def: {c['deferred_count']:<4} re-q: {c['requeue_count']:<5} "
            f"timeout: {c['timeout_count']:<5} msgs: {c['message_count']:<8} e2e%: {_e2e(c)}"
        )
        lines += [f"        {_client_line(client, now)}" for client in c["clients"] or []]
    return lines


def _client_line(client: Json, now: float) -> str:
    port = client["remote_address"].rpartition(":")[2]
    name = f"{client['hostname']}:{port} {client['user_agent']}"
    connected = format_duration_ns(max(int(now) - client["connect_ts"], 0) * 1_000_000_000)
    if client.get("pub_counts"):
        counts = client["pub_counts"]
        total = sum(count["count"] for count in counts)
        topics = ",".join(f"{count['topic']}={count['count']}" for count in counts)
        return (
            f"[{client['version']} {name:<21}] msgs: {total:<8} topics: {topics} "
            f"connected: {connected}"
        )
    return (
        f"[{client['version']} {name:<21}] state: {client['state']} "
        f"inflt: {client['in_flight_count']:<4} rdy: {client['ready_count']:<4} "
        f"fin: {client['finish_count']:<8} re-q: {client['requeue_count']:<8} "
        f"msgs: {client['message_count']:<8} connected: {connected}"
    )


def _e2e(stats: Json) -> str:
    percentiles = stats["e2e_processing_latency"]["percentiles"] or []
    return ", ".join(_human_ns(p["value"]) for p in percentiles)


def _human_ns(value: float) -> str:
    """NSQ's NanoSecondToHuman: one decimal in the largest unit the value exceeds."""
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if value > scale:
            return f"{value / scale:.1f}{unit}"
    return f"{value:.1f}ns"


def _rfc3339(unix_seconds: int) -> str:
    text = datetime.fromtimestamp(unix_seconds).astimezone().isoformat(timespec="seconds")
    return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text
