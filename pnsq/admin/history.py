"""Charts without graphite: a bounded history of rates and depths, sampled from /stats.

The admin samples every node every ``--sample-interval`` and records, per series, one point
``(time, rate, depth)``. A series is the whole cluster (``total``), a topic (``topic:T``), a
channel (``channel:T:C``) or a node (``node:HOST:PORT``); topic and channel names cannot hold
``:``. Rates come from ``message_count`` deltas per (series, node), summed over the nodes that
answered both samples: a node going down or coming back never makes a negative or spiking rate
(graphite's derivative does, NSQ #1430), and a counter that went backwards (the node restarted,
the topic was recreated) counts from zero. Each series keeps at most ``size`` points, and a
series that has not been seen for ``size`` samples is dropped, so memory stays bounded.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

from .aggregate import Node

Counters = dict[tuple[str, str], tuple[int, int]]  # (series, node) -> (message_count, depth)
Point = tuple[float, float | None, int]  # (unix time, messages per second or None, depth)


def counters(nodes: Iterable[Node]) -> Counters:
    """Every series' message count and depth on every node that answered."""
    out: Counters = {}

    def add(series: str, node: str, messages: int, depth: int) -> None:
        old_messages, old_depth = out.get((series, node), (0, 0))
        out[series, node] = (old_messages + messages, old_depth + depth)

    for node in nodes:
        for topic in node.topics():
            name = topic["topic_name"]
            channels = topic.get("channels") or []
            depth = int(topic.get("depth") or 0) + sum(int(c.get("depth") or 0) for c in channels)
            messages = int(topic.get("message_count") or 0)
            add(f"topic:{name}", node.node, messages, depth)
            add(f"node:{node.node}", node.node, messages, depth)
            add("total", node.node, 0, depth)
            for channel in channels:
                count = int(channel.get("message_count") or 0)
                key = f"channel:{name}:{channel['channel_name']}"
                add(key, node.node, count, int(channel.get("depth") or 0))
                add("total", node.node, count, 0)  # the cluster's rate: messages processed
        if node.up:
            add(f"node:{node.node}", node.node, 0, 0)
            add("total", node.node, 0, 0)
    return out


class History:
    def __init__(self, size: int) -> None:
        self.size = size
        self.series: dict[str, deque[Point]] = {}
        self._seen: dict[str, int] = {}  # series -> number of the last sample that had it
        self._samples = 0
        self._last: tuple[float, Counters] | None = None

    def record(self, now: float, sample: Counters) -> None:
        self._samples += 1
        rates: dict[str, float] = {}
        depths: dict[str, int] = {}
        last_time, last = self._last if self._last else (now, {})
        elapsed = now - last_time
        for (series, node), (messages, depth) in sample.items():
            depths[series] = depths.get(series, 0) + depth
            before = last.get((series, node))
            if before is not None and elapsed > 0:
                delta = messages - before[0]
                rates[series] = rates.get(series, 0.0) + (delta if delta >= 0 else messages)
        for series, depth in depths.items():
            rate = rates[series] / elapsed if series in rates else None
            ring = self.series.get(series)
            if ring is None:
                ring = self.series[series] = deque(maxlen=self.size)
            ring.append((now, rate, depth))
            self._seen[series] = self._samples
        for series in [s for s, n in self._seen.items() if self._samples - n >= self.size]:
            del self.series[series], self._seen[series]
        self._last = (now, sample)

    def points(self, series: str) -> list[Point]:
        return list(self.series.get(series, ()))

    def rate(self, series: str) -> float | None:
        """The latest rate of ``series`` (messages per second), None before two samples."""
        ring = self.series.get(series)
        return ring[-1][1] if ring else None

    def document(self, series: str, interval: float) -> dict[str, Any]:
        return {
            "series": series,
            "interval": interval,
            "points": [{"t": t, "rate": r, "depth": d} for t, r, d in self.points(series)],
        }
