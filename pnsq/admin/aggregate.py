"""Cluster views from the nodes' ``/stats`` documents: pure functions, no sockets, no clock.

Every page and JSON answer of the admin is computed here from a list of ``Node``: what the
lookupds say about an nsqd (its addresses, its topics) plus the ``/stats?format=json`` document
it answered with, or the error it failed with. A node that did not answer keeps its row (``up``
false, ``error`` set) and adds nothing to the totals; the rest of the view is complete. Shapes
follow nsqadmin's ``/api`` (reference §6.2): aggregated rows carry ``node: "*"`` and a
``nodes`` list of per-nsqd rows; ``memory_depth`` is ``depth - backend_depth``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Doc = Mapping[str, Any]

_TOPIC_SUMS = ("depth", "backend_depth", "message_count", "message_bytes")
_CHANNEL_SUMS = (
    "depth",
    "backend_depth",
    "in_flight_count",
    "deferred_count",
    "message_count",
    "requeue_count",
    "timeout_count",
    "client_count",
)


@dataclass(frozen=True)
class Node:
    """One nsqd as the admin knows it; ``node`` (``host:http_port``) names it everywhere."""

    node: str
    hostname: str = ""
    broadcast_address: str = ""
    tcp_port: int = 0
    http_port: int = 0
    version: str = ""
    remote_addresses: tuple[str, ...] = ()
    lookupd_topics: tuple[tuple[str, bool], ...] = ()  # (topic, tombstoned) per lookupd
    stats: Doc | None = None
    error: str = ""

    @property
    def up(self) -> bool:
        return self.stats is not None

    def topics(self) -> list[Doc]:
        return list((self.stats or {}).get("topics") or [])

    def topic(self, name: str) -> Doc | None:
        return next((t for t in self.topics() if t.get("topic_name") == name), None)


@dataclass
class View:
    """An answer and the warnings about nodes that did not contribute to it."""

    data: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        message = "WARNING: " + "; ".join(self.warnings) if self.warnings else ""
        return {**self.data, "message": message}


def node_warnings(nodes: Iterable[Node]) -> list[str]:
    return [f"nsqd {n.node} did not answer: {n.error}" for n in nodes if not n.up]


def _sum(rows: Iterable[Doc], keys: Iterable[str]) -> dict[str, int]:
    totals = dict.fromkeys(keys, 0)
    for row in rows:
        for key in totals:
            totals[key] += int(row.get(key) or 0)
    return totals


def _with_memory_depth(row: dict[str, Any]) -> dict[str, Any]:
    row["memory_depth"] = row["depth"] - row["backend_depth"]
    return row


def merge_e2e(documents: Iterable[Doc | None]) -> dict[str, Any]:
    """nsqadmin's merged E2E (Go's ``E2eProcessingLatencyAggregate``) from nsqd's documents
    (``{"count": N, "percentiles": [{"quantile", "value"}]}``, values in ns): per quantile
    the min and max over the nodes, and their average weighted by each node's count of
    finished messages, which ``count`` sums; highest quantile first."""
    count = 0
    by_quantile: dict[float, list[tuple[float, int]]] = {}
    for doc in documents:
        if not doc:
            continue
        finished = int(doc.get("count") or 0)
        count += finished
        for p in doc.get("percentiles") or []:
            by_quantile.setdefault(float(p["quantile"]), []).append((float(p["value"]), finished))
    percentiles = [_merged(q, values) for q, values in sorted(by_quantile.items(), reverse=True)]
    return {"count": count, "percentiles": percentiles or None}


def _merged(quantile: float, values: list[tuple[float, int]]) -> dict[str, Any]:
    weight = sum(finished for _, finished in values)
    if weight:
        average = sum(value * finished for value, finished in values) / weight
    else:  # no counts reported: every node alike
        average = sum(value for value, _ in values) / len(values)
    plain = [value for value, _ in values]
    return {
        "quantile": quantile,
        "min": min(plain),
        "max": max(plain),
        "average": average,
        "count": weight,
    }


# -- topics -------------------------------------------------------------------------------------


def topic_names(nodes: Iterable[Node], lookupd_topics: Iterable[str] = ()) -> list[str]:
    names = set(lookupd_topics)
    for node in nodes:
        names.update(t["topic_name"] for t in node.topics())
        names.update(topic for topic, _ in node.lookupd_topics)
    return sorted(names)


def topic_summaries(nodes: list[Node], names: Iterable[str]) -> list[dict[str, Any]]:
    """The Topics page: per topic, depth (topic + channels), in-flight, messages, channels."""
    rows = []
    for name in names:
        docs = [doc for n in nodes if (doc := n.topic(name)) is not None]
        channels = [c for doc in docs for c in doc.get("channels") or []]
        topic_depth = sum(int(d.get("depth") or 0) for d in docs)
        rows.append(
            {
                "topic_name": name,
                "depth": topic_depth,
                "total_depth": topic_depth + sum(int(c.get("depth") or 0) for c in channels),
                "in_flight_count": sum(int(c.get("in_flight_count") or 0) for c in channels),
                "message_count": sum(int(d.get("message_count") or 0) for d in docs),
                "channel_count": len({c["channel_name"] for c in channels}),
                "node_count": len(docs),
                "paused": any(d.get("paused") for d in docs),
            }
        )
    return rows


def _producers(nodes: Iterable[Node], topic: str) -> list[Node]:
    """Nodes with the topic: in their stats, or (when down) registered for it with lookupd."""
    return [
        n
        for n in nodes
        if n.topic(topic) is not None or (not n.up and any(t == topic for t, _ in n.lookupd_topics))
    ]


def topic_stats(nodes: list[Node], topic: str) -> View | None:
    """``/api/topics/:topic``; None when no node has or had the topic."""
    producers = _producers(nodes, topic)
    if not producers:
        return None
    rows: list[dict[str, Any]] = []
    channel_rows: list[tuple[Node, Doc]] = []
    for node in producers:
        doc = node.topic(topic)
        if doc is None:
            rows.append(_down_row(node, topic_name=topic))
            continue
        row = _with_memory_depth(_sum([doc], _TOPIC_SUMS))
        channels = list(doc.get("channels") or [])
        tombstoned = any(t == topic and stone for t, stone in node.lookupd_topics)
        row.update(
            node=node.node,
            hostname=node.hostname,
            topic_name=topic,
            paused=bool(doc.get("paused")),
            channel_count=len(channels),
            tombstoned=tombstoned,
            up=True,
            e2e_processing_latency=merge_e2e([doc.get("e2e_processing_latency")]),
        )
        rows.append(row)
        channel_rows.extend((node, c) for c in channels)
    up_rows = [r for r in rows if r["up"]]
    total = _with_memory_depth(_sum(up_rows, _TOPIC_SUMS))
    docs = [d for n in producers if (d := n.topic(topic)) is not None]
    channel_names = sorted({c["channel_name"] for _, c in channel_rows})
    total.update(
        node="*",
        hostname="",
        topic_name=topic,
        paused=any(r["paused"] for r in up_rows),
        nodes=rows,
        channels=[_channel_total(nodes, topic, name).data for name in channel_names],
        e2e_processing_latency=merge_e2e(d.get("e2e_processing_latency") for d in docs),
    )
    return View(total, node_warnings(producers))


def _down_row(node: Node, **names: str) -> dict[str, Any]:
    return {"node": node.node, "hostname": node.hostname, "up": False, "error": node.error, **names}


# -- channels -----------------------------------------------------------------------------------


def _channel_doc(node: Node, topic: str, channel: str) -> Doc | None:
    doc = node.topic(topic)
    if doc is None:
        return None
    return next((c for c in doc.get("channels") or [] if c.get("channel_name") == channel), None)


def _channel_total(nodes: list[Node], topic: str, channel: str) -> View:
    rows: list[dict[str, Any]] = []
    clients: list[dict[str, Any]] = []
    e2e: list[Doc | None] = []  # nsqd's own documents: the rows hold them merged already
    for node in _producers(nodes, topic):
        doc = _channel_doc(node, topic, channel)
        if doc is None:
            if not node.up:
                rows.append(_down_row(node, topic_name=topic, channel_name=channel))
            continue
        e2e.append(doc.get("e2e_processing_latency"))
        row = _with_memory_depth(_sum([doc], _CHANNEL_SUMS))
        row.update(
            node=node.node,
            hostname=node.hostname,
            topic_name=topic,
            channel_name=channel,
            paused=bool(doc.get("paused")),
            up=True,
            e2e_processing_latency=merge_e2e([doc.get("e2e_processing_latency")]),
        )
        rows.append(row)
        clients.extend({**c, "node": node.node} for c in doc.get("clients") or [])
    up_rows = [r for r in rows if r["up"]]
    total = _with_memory_depth(_sum(up_rows, _CHANNEL_SUMS))
    total.update(
        node="*",
        hostname="",
        topic_name=topic,
        channel_name=channel,
        paused=any(r["paused"] for r in up_rows),
        nodes=rows,
        clients=sorted(clients, key=lambda c: (c["node"], c.get("remote_address", ""))),
        e2e_processing_latency=merge_e2e(e2e),
    )
    down = [n for n in _producers(nodes, topic) if not n.up]
    return View(total, node_warnings(down))


def channel_stats(nodes: list[Node], topic: str, channel: str) -> View | None:
    """``/api/topics/:topic/:channel``; None when no node has the channel (and none is down)."""
    view = _channel_total(nodes, topic, channel)
    return view if view.data["nodes"] else None


# -- nodes --------------------------------------------------------------------------------------


def node_list(nodes: list[Node], expected_version: str) -> View:
    """``/api/nodes``: every nsqd, up or not, with its topics as lookupd and /stats see them."""
    rows = []
    for node in nodes:
        topics = dict(node.lookupd_topics)
        for doc in node.topics():
            topics.setdefault(doc["topic_name"], False)
        rows.append(
            {
                "node": node.node,
                "hostname": node.hostname,
                "broadcast_address": node.broadcast_address,
                "tcp_port": node.tcp_port,
                "http_port": node.http_port,
                "version": node.version,
                "out_of_date": bool(node.version) and node.version != expected_version,
                "remote_addresses": list(node.remote_addresses),
                "topics": [{"topic": t, "tombstoned": topics[t]} for t in sorted(topics)],
                "up": node.up,
                "error": node.error,
                "state": (node.stats or {}).get("state", "running"),
            }
        )
    return View({"nodes": rows}, node_warnings(nodes))


def node_stats(nodes: list[Node], name: str) -> View | None:
    """``/api/nodes/:node``: one nsqd's topics and channels, its totals and its clients."""
    node = next((n for n in nodes if n.node == name), None)
    if node is None:
        return None
    topics = []
    for doc in node.topics():
        row = _with_memory_depth(_sum([doc], _TOPIC_SUMS))
        channels = [
            {
                **_with_memory_depth(_sum([c], _CHANNEL_SUMS)),
                "channel_name": c["channel_name"],
                "paused": bool(c.get("paused")),
            }
            for c in doc.get("channels") or []
        ]
        row.update(topic_name=doc["topic_name"], paused=bool(doc.get("paused")), channels=channels)
        topics.append(row)
    clients = [
        {**c, "topic_name": t["topic_name"], "channel_name": c_doc["channel_name"]}
        for t in node.topics()
        for c_doc in t.get("channels") or []
        for c in c_doc.get("clients") or []
    ]
    data = {
        "node": node.node,
        "hostname": node.hostname,
        "broadcast_address": node.broadcast_address,
        "version": node.version,
        "up": node.up,
        "error": node.error,
        "state": (node.stats or {}).get("state", "running"),  # pnsq's nsqd: drain mode
        "topics": topics,
        "total_messages": sum(t["message_count"] for t in topics),
        "total_clients": len(clients),
        "clients": clients,
    }
    return View(data, node_warnings([node]))


# -- counter ------------------------------------------------------------------------------------


def counter(nodes: list[Node]) -> View:
    """``/api/counter``: every channel's message count by ``topic:channel:node``, and the sum."""
    stats = {}
    for node in nodes:
        for topic in node.topics():
            for channel in topic.get("channels") or []:
                key = f"{topic['topic_name']}:{channel['channel_name']}:{node.node}"
                stats[key] = {
                    "node": node.node,
                    "topic_name": topic["topic_name"],
                    "channel_name": channel["channel_name"],
                    "message_count": int(channel.get("message_count") or 0),
                }
    total = sum(s["message_count"] for s in stats.values())
    return View({"stats": stats, "total_messages": total}, node_warnings(nodes))
