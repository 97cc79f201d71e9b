"""The admin's own ``GET /metrics``: how well it sees the cluster, in Prometheus' formats.

The admin is a poller: every page, API answer and sample asks the lookupds and nsqds afresh.
What an operator needs from it is whether those polls work: a counter of failed polls per
node (an nsqd's ``/stats``, or a lookupd's ``/nodes``, ``/topics``, ``/channels``), how many
nsqds answered or not at the last poll, and how long a poll of the whole cluster takes. The
cluster's own figures (depths, rates) are the daemons' ``/metrics``; the admin does not
re-export them, so nothing is counted twice.

Each ``ClusterMetrics`` has its own ``CollectorRegistry`` (not prometheus_client's global
one): two admins in one process (tests do that) count apart. Updates happen once per poll,
never per message, so plain Counter/Gauge/Histogram objects cost nothing worth batching.
Process metrics (RSS, CPU, open fds, GC, Python version) come from prometheus_client's
collectors, as on the daemons. The encoding follows ``Accept``: OpenMetrics when the scraper
asks for ``application/openmetrics-text``, the classic text format otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.exposition import choose_encoder

# A poll waits for its slowest node, bounded by --http-client-request-timeout (default 5 s):
# finer steps below 100 ms, where a healthy cluster answers, and up to a timed-out node.
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ClusterMetrics:
    """What the cluster poller reports about itself; ``registry`` is what ``/metrics`` serves."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.scrape_errors = Counter(
            "nsqadmin_scrape_errors",
            "Failed polls of a node: an nsqd's /stats or a lookupd's query, by node address.",
            ["node"],
            registry=registry,
        )
        self.nodes = Gauge(
            "nsqadmin_nodes",
            "nsqd nodes at the last cluster poll, by whether they answered (up) or not (down).",
            ["state"],
            registry=registry,
        )
        self.scrape_duration = Histogram(
            "nsqadmin_scrape_duration_seconds",
            "Time to poll the whole cluster (lookupds, then every nsqd's /stats at once).",
            buckets=_DURATION_BUCKETS,
            registry=registry,
        )
        ProcessCollector(registry=registry)
        GCCollector(registry=registry)
        PlatformCollector(registry=registry)

    def polled(self, addresses: Iterable[str]) -> None:
        """Nodes the admin polls: their error series exist (at 0) before the first failure,
        so ``rate()`` and ``increase()`` see the first one."""
        for address in addresses:
            self.scrape_errors.labels(address)

    def failed(self, address: str) -> None:
        self.scrape_errors.labels(address).inc()

    def nodes_seen(self, up: int, down: int) -> None:
        self.nodes.labels("up").set(up)
        self.nodes.labels("down").set(down)


def encode(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """The registry's samples and their content type, in the format ``accept`` asks for."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type
