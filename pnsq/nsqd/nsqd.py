"""nsqd: a ``Broker`` that listens, on TCP (protocol V2), HTTP and HTTPS, until ``stop()``.

The top floor of nsqd: the broker's state and rules live in ``broker``, the connections in
``protocol_v2`` and ``http_api``, which act on the broker; this module only wires them to
listeners. ``serve`` runs the listeners in their own nursery and the connections in another,
so that shutdown stops accepting, closes clients (a grace period), then cancels whatever is
left, and writes what the queues hold to disk. A drain (``drain.start()``) ends in that same
shutdown, called by the drain task once the node is empty or its time is up.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial

import trio

from .._internal.daemon import bound_address, listen
from .broker import Broker, DataPathLockedError
from .http_api import handle_https_connection, serve_http
from .protocol_v2 import handle_connection
from .statsd import StatsdPusher

__all__ = ["NSQD", "DataPathLockedError"]

log = logging.getLogger("pnsq.nsqd")

SHUTDOWN_GRACE = 2.0


class NSQD(Broker):
    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen on the TCP (and HTTP) addresses until ``stop()``; then close down."""
        self.load_metadata()
        tcp = await listen(self.options.tcp_address)
        http = await listen(self.options.http_address) if self.options.http_address else []
        https = await self._listen_https()
        self.tcp_address = bound_address(tcp)
        self.http_address = bound_address(http) if http else None
        log.info("TCP: listening on %s:%d", *self.tcp_address)
        if self.http_address:
            log.info("HTTP: listening on %s:%d", *self.http_address)
        if https:
            self.https_address = bound_address(https)
            log.info("HTTPS: listening on %s:%d", *self.https_address)
        async with trio.open_nursery() as connections:
            async with trio.open_nursery() as listeners:
                listeners.start_soon(self.run_timers)
                listeners.start_soon(self.disk.run)
                listeners.start_soon(self.lookup.run)
                listeners.start_soon(self.drain.run, self.stop)
                if self.options.statsd_address:
                    listeners.start_soon(StatsdPusher(self).run)
                _serve(listeners, connections, tcp, partial(handle_connection, self))
                if http:
                    listeners.start_soon(serve_http, self, http, connections)
                _serve(listeners, connections, https, partial(handle_https_connection, self))
                task_status.started()
                await self._stop.wait()
                listeners.cancel_scope.cancel()
            await self.close_clients(SHUTDOWN_GRACE)
            connections.cancel_scope.cancel()
        for listener in tcp + http + https:
            await listener.aclose()
        await self.close_queues()
        log.info("stopped")

    async def _listen_https(self) -> list[trio.SocketListener]:
        """NSQ listens on --https-address only when it has a certificate."""
        if self.tls_context is None or not self.options.https_address:
            return []
        return await listen(self.options.https_address)


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
