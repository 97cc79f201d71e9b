"""The nsqd daemon's state: topics, clients, message IDs, and the one timer task.

Timers (in-flight timeouts, deferred messages) belong to channels; each channel asks for a
wake-up at its earliest deadline (``schedule``) and one task sleeps until the earliest of all,
so a timer fires on time even on a channel created a moment ago. ``serve`` runs the listeners
in their own nursery and the connections in another, so that shutdown stops accepting, closes
clients, then cancels whatever is left.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import time
from functools import partial
from typing import TYPE_CHECKING

import trio

from .._internal.netaddr import split_host_port
from .channel import Channel
from .client_v2 import ClientV2
from .lookup import LookupPeers
from .message import IdFactory
from .options import Options
from .topic import Topic

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

log = logging.getLogger("pnsq.nsqd")

SHUTDOWN_GRACE = 2.0


class NSQD:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.topics: dict[str, Topic] = {}
        self.clients: dict[int, ClientV2] = {}
        self.ids = IdFactory(options.node_id)
        self.start_time = int(time.time())
        self.exiting = False
        self.health = "OK"
        self.tcp_address: tuple[str, int] | None = None
        self.http_address: tuple[str, int] | None = None
        self._client_ids = itertools.count(1)
        self._timers: list[tuple[float, int, Channel]] = []
        self._timer_seq = itertools.count()
        self._timer_scope: trio.CancelScope | None = None
        self._stop = trio.Event()
        self._no_clients = trio.Event()
        self.lookup = LookupPeers(self)

    @staticmethod
    def now() -> float:
        """The clock every timer uses (trio's; virtual under a test clock)."""
        return trio.current_time()

    # -- topics -------------------------------------------------------------------------

    def get_topic(self, name: str) -> Topic:
        topic = self.topics.get(name)
        if topic is None:
            topic = self.topics[name] = Topic(name, self)
            log.info("TOPIC(%s): created", name)
            self.lookup.topic_created(topic)
        return topic

    def delete_topic(self, name: str) -> None:
        topic = self.topics.pop(name)
        topic.delete()
        log.info("TOPIC(%s): deleted", name)
        self.lookup.topic_deleted(name)

    def channel_created(self, topic: Topic, channel: Channel) -> None:
        log.info("TOPIC(%s): new channel(%s)", topic.name, channel.name)
        self.lookup.channel_created(topic, channel)

    def channel_deleted(self, topic: Topic, channel: Channel) -> None:
        log.info("TOPIC(%s): deleted channel(%s)", topic.name, channel.name)
        self.lookup.channel_deleted(topic, channel)

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

    # -- serving --------------------------------------------------------------------------

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen on the TCP (and HTTP) addresses until ``stop()``; then close down."""
        from .protocol_v2 import handle_connection

        tcp = await _listen(self.options.tcp_address)
        http = await _listen(self.options.http_address) if self.options.http_address else []
        self.tcp_address = _bound(tcp)
        self.http_address = _bound(http) if http else None
        log.info("TCP: listening on %s:%d", *self.tcp_address)
        if self.http_address:
            log.info("HTTP: listening on %s:%d", *self.http_address)
        async with trio.open_nursery() as connections:
            async with trio.open_nursery() as listeners:
                listeners.start_soon(self.run_timers)
                listeners.start_soon(self.lookup.run)
                _serve(listeners, connections, tcp, lambda s: handle_connection(self, s))
                if http:
                    from .http_api import handle_http_connection

                    _serve(listeners, connections, http, lambda s: handle_http_connection(self, s))
                task_status.started()
                await self._stop.wait()
                listeners.cancel_scope.cancel()
            self.exiting = True
            if not self.clients:
                self._no_clients.set()
            for client in list(self.clients.values()):
                client.kick()
            with trio.move_on_after(SHUTDOWN_GRACE):
                await self._no_clients.wait()
            connections.cancel_scope.cancel()
        for listener in tcp + http:
            await listener.aclose()
        log.info("stopped")

    def stop(self) -> None:
        self._stop.set()


async def _listen(address: str) -> list[trio.SocketListener]:
    host, port = split_host_port(address)
    return await trio.open_tcp_listeners(port, host=host or None)


def _bound(listeners: list[trio.SocketListener]) -> tuple[str, int]:
    sockname = listeners[0].socket.getsockname()
    return sockname[0], sockname[1]


def _serve(
    nursery: trio.Nursery,
    handlers: trio.Nursery,
    listeners: list[trio.SocketListener],
    handler: Callable[[trio.SocketStream], Awaitable[None]],
) -> None:
    if listeners:
        nursery.start_soon(
            partial(trio.serve_listeners, handler, listeners, handler_nursery=handlers)
        )
