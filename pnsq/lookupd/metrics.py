"""nsqlookupd's GET /metrics: its registrations, read at scrape time.

The counts are taken the way the HTTP API answers: ``nsqlookupd_producers`` and
``nsqlookupd_tombstones`` from the same ``RegistrationDB.nodes`` call as /nodes (active
producers only), topics as /topics lists them, channels as /channels does. The per-peer series
cover every identified nsqd connection, active or not: a peer whose last-update age grows past
--inactive-producer-timeout is the hung nsqd that /nodes stops showing, which is what an alert
wants to see. A lookupd has a few peers, so these are ordinary prometheus_client families.
"""

from __future__ import annotations

from collections import Counter
from typing import Protocol

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from .._internal.prometheus import Exposition
from .options import LookupdOptions
from .registration_db import RegistrationDB

PEER_LABELS = ("remote_address", "hostname", "broadcast_address", "tcp_port", "http_port")


class Registrations(Protocol):
    """What the collector reads of the daemon (``Lookupd``)."""

    @property
    def db(self) -> RegistrationDB: ...

    @property
    def options(self) -> LookupdOptions: ...

    def now(self) -> float: ...


def exposition(lookupd: Registrations) -> Exposition:
    """``lookupd``'s registry: process, GC and platform metrics, and its own collector."""
    return Exposition(LookupdCollector(lookupd))


class LookupdCollector:
    """The lookupd families, read from ``lookupd`` at every ``collect`` (a scrape)."""

    def __init__(self, lookupd: Registrations) -> None:
        self._lookupd = lookupd

    def collect(self) -> list[Metric]:
        lookupd = self._lookupd
        db, options, now = lookupd.db, lookupd.options, lookupd.now()
        nodes = db.nodes(now, options.inactive_producer_timeout, options.tombstone_lifetime)
        tombstones = sum(sum(flags) for _, _, flags in nodes)
        families = [
            GaugeMetricFamily(
                "nsqlookupd_producers", "Active nsqd producers (as /nodes)", value=len(nodes)
            ),
            GaugeMetricFamily(
                "nsqlookupd_topics", "Topics known (as /topics)", value=len(db.topics)
            ),
            GaugeMetricFamily(
                "nsqlookupd_channels",
                "Channels known, over every topic (as /channels)",
                value=sum(len(channels) for channels in db.channels.values()),
            ),
            GaugeMetricFamily(
                "nsqlookupd_tombstones",
                "Topic producers tombstoned now (as /nodes' tombstones)",
                value=tombstones,
            ),
        ]
        return families + _peer_families(db, now)


def _peer_families(db: RegistrationDB, now: float) -> list[Metric]:
    registrations = GaugeMetricFamily(
        "nsqlookupd_producer_registrations",
        "Topic and channel registrations of each connected nsqd (as /debug)",
        labels=PEER_LABELS,
    )
    ages = GaugeMetricFamily(
        "nsqlookupd_producer_last_update_age_seconds",
        "Seconds since each connected nsqd last identified or pinged",
        labels=PEER_LABELS,
    )
    counts = _registrations(db)
    for peer in db.peers.values():
        labels = [str(peer.info.get(name, "")) for name in PEER_LABELS]
        registrations.add_metric(labels, counts[peer.id])
        ages.add_metric(labels, max(now - peer.last_update, 0.0))
    return [registrations, ages]


def _registrations(db: RegistrationDB) -> Counter[str]:
    """Registrations (topic and channel producers) by peer id."""
    counts: Counter[str] = Counter()
    for producers in db.topics.values():
        counts.update(producers.keys())
    for channels in db.channels.values():
        for producers in channels.values():
            counts.update(producers.keys())
    return counts
