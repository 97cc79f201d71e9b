"""nsqlookupd's registrations: which nsqd (producer) has which topic and channel (reference §5.2).

NSQ keys one map by ``(category, key, subkey)``; here the three categories are three plain
maps: the identified peers, producers by topic, and producers by topic then channel. A key
outlives its producers (lookupd never forgets a topic name it has seen, B.9), except the
``#ephemeral`` ones, dropped with their last producer. Time is an argument: ``now`` is
whatever clock the daemon uses (trio's), so ageing and tombstones are plain functions of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..wire.names import is_ephemeral

# PeerInfo as NSQ serialises it, in NSQ's order.
PEER_FIELDS = (
    "remote_address",
    "hostname",
    "broadcast_address",
    "tcp_port",
    "http_port",
    "version",
    "topology_zone",
    "topology_region",
)


@dataclass(eq=False, slots=True)
class Peer:
    """One identified nsqd connection; ``id`` is its remote address."""

    id: str
    info: dict[str, Any]  # PEER_FIELDS
    last_update: float

    @property
    def http_node(self) -> str:
        """``broadcast_address:http_port``, how /topic/tombstone names a node."""
        return f"{self.info['broadcast_address']}:{self.info['http_port']}"


@dataclass(eq=False, slots=True)
class Producer:
    """A peer as producer of one topic or channel; only a topic producer is ever tombstoned."""

    peer: Peer
    tombstoned_at: float | None = None

    def is_tombstoned(self, now: float, lifetime: float) -> bool:
        return self.tombstoned_at is not None and now - self.tombstoned_at < lifetime


Producers = dict[str, Producer]  # by peer id


@dataclass(slots=True)
class RegistrationDB:
    peers: dict[str, Peer] = field(default_factory=dict)
    topics: dict[str, Producers] = field(default_factory=dict)
    channels: dict[str, dict[str, Producers]] = field(default_factory=dict)  # topic -> channel

    # -- peers (the TCP protocol) ---------------------------------------------------------

    def add_peer(self, peer: Peer) -> None:
        self.peers[peer.id] = peer

    def remove_peer(self, peer: Peer) -> None:
        """A closed link: every registration of the peer goes at once."""
        self.peers.pop(peer.id, None)
        for topic in list(self.channels):
            for channel in list(self.channels.get(topic, ())):
                self._remove_channel_producer(topic, channel, peer)
        for topic in list(self.topics):
            self._remove_topic_producer(topic, peer)

    def register(self, peer: Peer, topic: str, channel: str | None) -> None:
        if channel is not None:
            self.channels.setdefault(topic, {}).setdefault(channel, {})
            self.channels[topic][channel].setdefault(peer.id, Producer(peer))
        self.topics.setdefault(topic, {}).setdefault(peer.id, Producer(peer))

    def unregister(self, peer: Peer, topic: str, channel: str | None) -> None:
        if channel is not None:
            self._remove_channel_producer(topic, channel, peer)
            return
        for name in list(self.channels.get(topic, ())):
            self._remove_channel_producer(topic, name, peer)
        self._remove_topic_producer(topic, peer)

    def _remove_channel_producer(self, topic: str, channel: str, peer: Peer) -> None:
        channels = self.channels.get(topic)
        if channels is None or channel not in channels:
            return
        producers = channels[channel]
        producers.pop(peer.id, None)
        if not producers and is_ephemeral(channel):
            del channels[channel]

    def _remove_topic_producer(self, topic: str, peer: Peer) -> None:
        producers = self.topics.get(topic)
        if producers is None:
            return
        producers.pop(peer.id, None)
        if not producers and is_ephemeral(topic):
            del self.topics[topic]
            if not self.channels.get(topic):
                self.channels.pop(topic, None)

    # -- administration (the HTTP API) ------------------------------------------------------

    def create_topic(self, topic: str) -> None:
        self.topics.setdefault(topic, {})

    def create_channel(self, topic: str, channel: str) -> None:
        self.channels.setdefault(topic, {}).setdefault(channel, {})
        self.create_topic(topic)

    def delete_topic(self, topic: str) -> None:
        self.channels.pop(topic, None)
        self.topics.pop(topic, None)

    def delete_channel(self, topic: str, channel: str) -> bool:
        """False when there was no such channel."""
        channels = self.channels.get(topic)
        if channels is None or channel not in channels:
            return False
        del channels[channel]
        return True

    def tombstone(self, topic: str, node: str, now: float) -> None:
        """Hide the producer ``node`` (broadcast_address:http_port) of ``topic`` for a while."""
        for producer in self.topics.get(topic, {}).values():
            if producer.peer.http_node == node:
                producer.tombstoned_at = now

    # -- queries ------------------------------------------------------------------------------

    def channel_names(self, topic: str) -> list[str]:
        return list(self.channels.get(topic, ()))

    def active_producers(
        self, topic: str, now: float, inactive_timeout: float, tombstone_lifetime: float
    ) -> list[Peer]:
        """The topic's producers seen within the timeout and not tombstoned."""
        return [
            p.peer
            for p in self.topics.get(topic, {}).values()
            if now - p.peer.last_update <= inactive_timeout
            and not p.is_tombstoned(now, tombstone_lifetime)
        ]

    def nodes(
        self, now: float, inactive_timeout: float, tombstone_lifetime: float
    ) -> list[tuple[Peer, list[str], list[bool]]]:
        """Each active peer, its topics, and whether each is tombstoned for it."""
        result = []
        for peer in self.peers.values():
            if now - peer.last_update > inactive_timeout:
                continue
            topics, tombstones = [], []
            for topic, producers in self.topics.items():
                producer = producers.get(peer.id)
                if producer is not None:
                    topics.append(topic)
                    tombstones.append(producer.is_tombstoned(now, tombstone_lifetime))
            result.append((peer, topics, tombstones))
        return result
