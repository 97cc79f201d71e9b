"""Accepting plain HTTP connections: every pending connection per wake-up, no trio stream.

A client that opens a connection per request pays for the connection as much as for the
request: through ``trio.serve_listeners`` each one also cost a trio socket, a ``SocketStream``,
a ``getpeername`` call and three cancel scopes (~165 us of nsqd's CPU per ``POST /pub``
altogether). Here the listening socket is read with direct ``accept`` calls until none is left,
and each connection is a plain socket served by ``http_server.SocketConnection``. What has
already arrived when the connection is accepted is answered there and then
(``serve_at_once``): a client that sends its request as it connects and asks to close after
the answer costs no task at all (trio's task and cancel scope were half of what remained).
Any other connection gets a task of its own, which takes over the parser, a pending answer
and unsent bytes, and closes the socket at the end. HTTPS keeps ``trio.serve_listeners`` and
its TLS streams.

Accept errors are handled as trio handles them: errors about one failed connection are
skipped, running out of descriptors or memory is logged and retried after a pause.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from collections.abc import Callable, Sequence
from typing import TypeVar

import trio

from .http_messages import Router
from .http_server import remote_name
from .http_socket import SocketConnection

__all__ = ["serve_http_listeners"]

C = TypeVar("C")

_ACCEPT_BATCH = 64  # connections accepted in a row before other tasks get a turn
_CAPACITY_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
_CAPACITY_PAUSE = 0.1
# errors about the one connection being accepted (gone, or refused by a firewall rule)
_SKIPPED_ERRNOS = {
    getattr(errno, name)
    for name in (
        "EPERM",
        "ECONNABORTED",
        "EPROTO",
        "ENETDOWN",
        "ENOPROTOOPT",
        "EHOSTDOWN",
        "ENONET",
        "EHOSTUNREACH",
        "EOPNOTSUPP",
        "ENETUNREACH",
    )
    if hasattr(errno, name)
}


async def serve_http_listeners(
    context: C,
    settings: Callable[[C], tuple[Router[C], float]],
    listeners: Sequence[trio.SocketListener],
    handler_nursery: trio.Nursery,
) -> None:
    """Accept on every listener until cancelled; each connection is served in
    ``handler_nursery``, with the router and idle timeout ``settings(context)`` gives then."""

    def serve(sock: socket.socket, address: Sequence[object]) -> None:
        """Answer what came with the connection; a task for the rest, if there is any."""
        router, idle_timeout = settings(context)
        connection = SocketConnection(context, router, remote_name(address), idle_timeout, sock)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            done = connection.serve_at_once()
        except OSError:
            done = True  # gone already
        except Exception:
            router.log.exception(
                "[HTTP %s] internal error; closing this connection", connection.remote
            )
            done = True
        if done:
            sock.close()
        else:
            handler_nursery.start_soon(_serve_socket, connection)

    logger = settings(context)[0].log
    async with trio.open_nursery() as nursery:
        for listener in listeners:
            nursery.start_soon(_accept_loop, listener, serve, logger)


async def _accept_loop(
    listener: trio.SocketListener,
    serve: Callable[[socket.socket, Sequence[object]], None],
    log: logging.Logger,
) -> None:
    # A second socket object on the listener's descriptor, detached at the end: the listener
    # stays the one to close it.
    trio_sock = listener.socket
    sock = socket.socket(trio_sock.family, trio_sock.type, trio_sock.proto, trio_sock.fileno())
    accepted = 0
    try:
        while True:
            try:
                connection, address = sock.accept()
            except BlockingIOError:
                accepted = 0
                await trio.lowlevel.wait_readable(sock)
                continue
            except OSError as exc:
                if exc.errno in _SKIPPED_ERRNOS:
                    continue
                if exc.errno not in _CAPACITY_ERRNOS:
                    raise
                log.error("HTTP: accept failed (%s); retrying", os.strerror(exc.errno))
                await trio.sleep(_CAPACITY_PAUSE)
                continue
            serve(connection, address)
            accepted += 1
            if accepted == _ACCEPT_BATCH:
                accepted = 0
                await trio.lowlevel.checkpoint()
    finally:
        sock.detach()


async def _serve_socket(connection: SocketConnection[C]) -> None:
    """One connection, closed at the end whatever happens; never raises but Cancelled."""
    try:
        await connection.run()
    except Exception:
        connection.router.log.exception(
            "[HTTP %s] internal error; closing this connection", connection.remote
        )
    finally:
        # No trio.lowlevel.notify_closing: only this task ever waits on the socket, and it is
        # not waiting now (trio forgets a descriptor once its waits end; the kernel drops a
        # closed one from epoll). It would cost an epoll_ctl call per connection.
        connection.sock.close()
