"""The broker: nsqd's topics, clients, message IDs, timers and metadata, without its sockets.

``Broker`` holds the state and the rules; ``nsqd.NSQD`` is a broker that listens (TCP and HTTP)
and serves connections. The split lets the protocol, HTTP and stats modules, which act on the
broker, sit above it, and ``NSQD`` above them, with no import going upward. Topics and
channels see the broker only as the small ``TopicHost`` / ``ChannelHost`` interfaces their
modules define, and the lookupd links as ``LookupHost``.

Timers (in-flight timeouts, deferred messages) belong to channels; each channel asks for a
wake-up at its earliest deadline (``schedule``) and one task sleeps until the earliest of all,
so a timer fires on time even on a channel created a moment ago.
"""

from __future__ import annotations

import fcntl
import heapq
import itertools
import json
import logging
import math
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio

from .. import NSQ_VERSION
from ..wire.names import is_ephemeral, is_valid_name
from . import tls
from .auth import AuthServers
from .backend import OnRead
from .channel import Channel
from .client_v2 import ClientV2
from .disk import Disk
from .diskqueue import DiskQueue
from .drain import Drain
from .lookup import LookupPeers
from .message import IdFactory
from .options import Options
from .topic import PutError, Topic

if TYPE_CHECKING:
    from .._internal.prometheus import Exposition

log = logging.getLogger("pnsq.nsqd")


class DataPathLockedError(OSError):
    """Another nsqd holds the lock on the data path."""


class Broker:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.topics: dict[str, Topic] = {}
        # New topics waiting for the channels lookupd knows: they take messages, but are not
        # in ``topics`` (so not in /stats, nsqd.dat or lookupd) until those channels exist.
        self.hatching: dict[str, Topic] = {}
        self.clients: dict[int, ClientV2] = {}
        self.ids = IdFactory(options.node_id)
        self.start_time = int(time.time())
        self.exiting = False
        self.health = "OK"
        self.tcp_address: tuple[str, int] | None = None
        self.http_address: tuple[str, int] | None = None
        self.https_address: tuple[str, int] | None = None
        self.tls_context = tls.server_context(options)  # None: no --tls-cert
        self.tls_required = tls.required(options)
        self._client_ids = itertools.count(1)
        self._timers: list[tuple[float, int, Channel]] = []
        self._timer_seq = itertools.count()
        self._timer_scope: trio.CancelScope | None = None
        self._no_clients = trio.Event()
        self._stop = trio.Event()
        self.disk = Disk(options, self._set_health)
        self.disk.metadata = self.metadata
        self._lock_fd: int | None = None
        self.lookup = LookupPeers(self)
        self.drain = Drain(self)
        self.auth = AuthServers(options) if options.auth_http_addresses else None
        self.exposition: Exposition | None = None  # GET /metrics: made by the first scrape

    def _set_health(self, health: str) -> None:
        self.health = health

    @staticmethod
    def now() -> float:
        """The clock every timer uses (trio's; virtual under a test clock)."""
        return trio.current_time()

    def stop(self) -> None:
        """Shut down gracefully (``NSQD.serve`` returns once the queues are on disk)."""
        self._stop.set()

    @property
    def draining(self) -> bool:
        return self.drain.active

    @property
    def state(self) -> str:
        """``running``, ``draining`` or ``exiting`` (shown by /info and /stats)."""
        return "exiting" if self.exiting else "draining" if self.drain.active else "running"

    # -- topics -------------------------------------------------------------------------

    def get_topic(self, name: str) -> Topic:
        """The topic ``name``, created if new (PutError while draining: no new topics)."""
        topic = self.topics.get(name) or self.hatching.get(name)
        if topic is None:
            if self.drain.active:
                raise PutError("nsqd draining")
            topic = Topic(name, self)
            if self.lookup.fetch_channels(topic):
                self.hatching[name] = topic
            else:
                self._add_topic(topic)
        return topic

    def hatch(self, topic: Topic, channels: list[str]) -> None:
        """A hatching topic gets ``channels`` (from lookupd), then appears, all at once (#1508)."""
        if self.hatching.get(topic.name) is not topic:
            return  # deleted meanwhile
        del self.hatching[topic.name]
        now = self.now()
        for name in channels:
            topic.get_channel(name, now)  # no hook fires: the topic is not listed yet
        self._add_topic(topic)
        topic.end_channel_wait(now)

    def _add_topic(self, topic: Topic) -> None:
        self.topics[topic.name] = topic
        log.info("TOPIC(%s): created", topic.name)
        for name in topic.channels:
            log.info("TOPIC(%s): new channel(%s)", topic.name, name)
        self.persist_metadata()
        if not self.drain.active:
            self.lookup.topic_created(topic)

    def delete_topic(self, name: str) -> None:
        topic = self.topics.pop(name, None) or self.hatching.pop(name)
        topic.delete()
        log.info("TOPIC(%s): deleted", name)
        self.persist_metadata()
        self.lookup.topic_deleted(name)

    def unregister_topic(self, topic: Topic) -> None:
        self.lookup.topic_deleted(topic.name)

    def _listed(self, topic: Topic) -> bool:
        """Whether ``topic`` is listed (in /stats, nsqd.dat, lookupd), i.e. no longer hatching."""
        return self.topics.get(topic.name) is topic

    def channel_created(self, topic: Topic, channel: Channel) -> None:
        if not self._listed(topic):
            return  # a hatching topic: told when it appears
        log.info("TOPIC(%s): new channel(%s)", topic.name, channel.name)
        self.persist_metadata()
        if not self.drain.active and not topic.draining:
            self.lookup.channel_created(topic, channel)

    def channel_deleted(self, topic: Topic, channel: Channel) -> None:
        if not self._listed(topic):
            return
        log.info("TOPIC(%s): deleted channel(%s)", topic.name, channel.name)
        self.persist_metadata()
        self.lookup.channel_deleted(topic, channel)

    # -- persistence ----------------------------------------------------------------------

    def open_backend(self, name: str, on_read: OnRead, wants_read: Callable[[], bool]) -> DiskQueue:
        return self.disk.open(name, on_read, wants_read)

    def persist_metadata(self) -> None:
        """nsqd.dat is rewritten (atomically) by the disk task's next round."""
        self.disk.persist_metadata()

    def metadata(self) -> bytes:
        """nsqd.dat: the durable topics and channels, and what is paused (NSQ's shape)."""
        topics = [
            {
                "name": topic.name,
                "paused": topic.paused,
                "channels": [
                    {"name": channel.name, "paused": channel.paused}
                    for channel in topic.channels.values()
                    if not channel.ephemeral
                ],
            }
            for topic in self.topics.values()
            if not topic.ephemeral
        ]
        return json.dumps({"topics": topics, "version": NSQ_VERSION}).encode()

    def load_metadata(self) -> None:
        """Lock the data path, then restore the topics and channels of nsqd.dat."""
        data_path = self.disk.data_path
        fd = os.open(data_path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DataPathLockedError(
                f"--data-path={data_path} is in use by another nsqd (it holds the lock)"
            ) from None
        self._lock_fd = fd
        try:
            with open(os.path.join(data_path, "nsqd.dat"), "rb") as f:
                document = json.load(f)
        except FileNotFoundError:
            return
        except ValueError as err:
            log.error("failed to read nsqd.dat - %s: starting without it", err)
            return
        now = self.now()
        for entry in document.get("topics", []):
            name = entry.get("name", "")
            if not is_valid_name(name) or is_ephemeral(name):
                continue
            topic = self.get_topic(name)
            for item in entry.get("channels", []):
                channel_name = item.get("name", "")
                if is_valid_name(channel_name) and not is_ephemeral(channel_name):
                    channel = topic.get_channel(channel_name, now)
                    channel.paused = bool(item.get("paused"))
            topic.paused = bool(entry.get("paused"))
            if not topic.paused:
                topic.unpause(now)

    async def close_queues(self) -> None:
        """Shutdown: memory, in-flight and deferred messages to disk, everything synced."""
        for topic in list(self.hatching.values()):
            self.hatch(topic, [])  # so that nsqd.dat lists it beside its messages
        now = self.now()
        for topic in self.topics.values():
            topic.close(now)
        await self.disk.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- clients --------------------------------------------------------------------------

    def add_client(self, address: tuple[str, int]) -> ClientV2:
        client = ClientV2(next(self._client_ids), address, self.options)
        self.clients[client.id] = client
        return client

    def remove_client(self, client: ClientV2) -> None:
        self.clients.pop(client.id, None)
        if client.channel is not None:
            client.channel.remove_client(client)
        if self.exiting and not self.clients:
            self._no_clients.set()

    async def close_clients(self, grace: float) -> None:
        """Shutdown: close every client's connection; wait up to ``grace`` for them to go."""
        self.exiting = True
        if not self.clients:
            self._no_clients.set()
        for client in list(self.clients.values()):
            client.kick()
        with trio.move_on_after(grace):
            await self._no_clients.wait()

    # -- timers ---------------------------------------------------------------------------

    def schedule(self, channel: Channel, when: float) -> None:
        """Wake ``channel.process_timers`` at ``when`` (trio clock) or soon after."""
        if when >= channel.wake_at:
            return
        channel.wake_at = when
        heapq.heappush(self._timers, (when, next(self._timer_seq), channel))
        scope = self._timer_scope
        if scope is not None and when < scope.deadline:
            scope.deadline = when

    async def run_timers(self) -> None:
        """Fire channel timers when due, forever (``serve`` runs it; tests may run it alone)."""
        timers = self._timers
        while True:
            with trio.CancelScope(deadline=timers[0][0] if timers else math.inf) as scope:
                self._timer_scope = scope
                await trio.sleep_forever()
            self._timer_scope = None
            now = trio.current_time()
            due: dict[int, Channel] = {}
            while timers and timers[0][0] <= now:
                when, _, channel = heapq.heappop(timers)
                if channel.wake_at == when:  # otherwise superseded by an earlier request
                    channel.wake_at = math.inf
                    due[id(channel)] = channel
            for channel in due.values():
                if not channel.exiting:
                    channel.process_timers(now)
