"""Drain mode (NSQ PR #1305's interface): take an nsqd, or one topic, out of service emptied.

A drained nsqd refuses publishes and new subscriptions, unregisters its topics from every
lookupd (keeping the links, so it can say so again after a lookupd restarts), lets its existing
consumers take everything queued, then shuts down the normal way (exit 0). ``--drain-timeout``
bounds the wait; what is left is written to disk by that same shutdown and logged per channel.
A drained topic refuses publishes, is unregistered, and is deleted once it is empty.

"Empty" counts only what can still be delivered, since new consumers are refused: a channel's
queue, in-flight and deferred messages while it has consumers and is not paused, and a topic's
own backlog while it has an unpaused channel to give it to. What nobody can take (a topic
without channels, a channel whose consumers left) does not hold the node up: it stays on disk.

Draining is watched by one task that looks every ``CHECK_INTERVAL``, and only while something
drains: the hot paths (publish, FIN) carry no drain bookkeeping.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Protocol

import trio

if TYPE_CHECKING:
    from .channel import Channel
    from .options import Options
    from .topic import Topic

log = logging.getLogger("pnsq.nsqd")

CHECK_INTERVAL = 0.1


class DrainHost(Protocol):
    """What draining needs of the broker (``Broker``)."""

    @property
    def options(self) -> Options: ...

    @property
    def topics(self) -> Mapping[str, Topic]: ...

    def delete_topic(self, name: str) -> None: ...

    def unregister_topic(self, topic: Topic) -> None:
        """Tell every lookupd this node no longer has ``topic`` (the link stays)."""
        ...


def deliverable(channel: Channel) -> int:
    """The channel's messages a consumer it has can still be given (0 if it has none)."""
    if channel.paused or not channel.clients:
        return 0
    return channel.depth() + len(channel.in_flight) + len(channel.deferred)


def held(channel: Channel) -> int:
    return channel.depth() + len(channel.in_flight) + len(channel.deferred)


def topic_pending(topic: Topic) -> int:
    """What ``topic`` can still deliver: its backlog (when a channel takes it), its channels'."""
    own = topic.depth() if topic.channels and not topic.paused else 0
    return own + sum(deliverable(c) for c in topic.channels.values())


def leftovers(topics: Iterable[Topic]) -> list[tuple[str, int]]:
    """``(topic or topic:channel, messages)`` for everything still held, for the log."""
    left = []
    for topic in topics:
        if topic.depth():
            left.append((topic.name, topic.depth()))
        left += [(f"{topic.name}:{c.name}", held(c)) for c in topic.channels.values() if held(c)]
    return left


class Drain:
    """The node's drain state and the task that finishes drains."""

    def __init__(self, host: DrainHost) -> None:
        self._host = host
        self.active = False  # the whole node drains
        self._work = trio.Event()
        self._topics: dict[str, Topic] = {}  # topics draining on their own

    def start(self) -> bool:
        """Drain the node; False if it already drains."""
        if self.active:
            return False
        self.active = True
        log.info("DRAIN: refusing publishes and new consumers; unregistering from lookupd")
        for topic in list(self._host.topics.values()):
            self._host.unregister_topic(topic)
        self._work.set()
        return True

    def drain_topic(self, topic: Topic) -> None:
        """Refuse ``topic``'s publishes, unregister it, delete it once it is empty."""
        if topic.draining:
            return
        topic.draining = True
        log.info("TOPIC(%s): draining", topic.name)
        self._host.unregister_topic(topic)
        self._topics[topic.name] = topic
        self._work.set()

    async def run(self, stop: Callable[[], None]) -> None:
        """Finish drains as they empty, forever; ``stop()`` once the node has drained."""
        deadline = math.inf
        while True:
            await self._work.wait()
            if self.active and deadline == math.inf and self._host.options.drain_timeout:
                deadline = trio.current_time() + self._host.options.drain_timeout
            self._finish_topics()
            if self.active and self._node_drained(deadline):
                stop()
                return
            if not self.active and not self._topics:
                self._work = trio.Event()
                continue
            await trio.sleep(CHECK_INTERVAL)

    def _finish_topics(self) -> None:
        topics = self._host.topics
        for name, topic in list(self._topics.items()):
            if topics.get(name) is not topic:  # deleted meanwhile
                del self._topics[name]
            elif not topic.depth() and not any(held(c) for c in topic.channels.values()):
                del self._topics[name]
                log.info("TOPIC(%s): drained; deleting it", name)
                self._host.delete_topic(name)

    def _node_drained(self, deadline: float) -> bool:
        topics = list(self._host.topics.values())
        if not any(topic_pending(topic) for topic in topics):
            left = leftovers(topics)
            log.info("DRAIN: done%s", f"; {_describe(left)} kept on disk" if left else "")
            return True
        if trio.current_time() < deadline:
            return False
        log.warning(
            "DRAIN: timed out after %.1fs; %s kept on disk",
            self._host.options.drain_timeout,
            _describe(leftovers(topics)),
        )
        return True


def _describe(left: list[tuple[str, int]]) -> str:
    return ", ".join(f"{name}: {n} messages" for name, n in left)
