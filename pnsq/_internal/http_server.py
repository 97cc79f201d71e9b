"""The HTTP server of the daemons (nsqd, nsqlookupd, authd): llhttp's parser driven on trio.

One task per connection (``http_connection``), over plain TCP with direct socket calls
(``http_socket``) or, for HTTPS, trio's TLS stream (here). nsqd accepts its plain connections
itself (``http_accept``); nsqlookupd and authd hand ``serve_http_connection`` the streams of
``trio.serve_listeners``. What handlers see is in ``http_messages``, re-exported here; the
request parser and the answers' bytes are in ``http_wire``. bench/README.md has the
measurements ("what each step bought").
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Sequence
from typing import Any, TypeVar

import trio

from .connection import serve_connection
from .http_connection import IDLE_TIMEOUT, LINGER_BYTES, RECEIVE_SIZE, HTTPConnection
from .http_messages import (
    EMPTY,
    OK,
    HTTPError,
    Request,
    Response,
    Route,
    Router,
    error,
    first,
    json_response,
    parse_query,
    text,
)
from .http_socket import SocketConnection

__all__ = [
    "EMPTY",
    "OK",
    "HTTPError",
    "Request",
    "Response",
    "Route",
    "Router",
    "error",
    "first",
    "json_response",
    "parse_query",
    "remote_name",
    "serve_http_connection",
    "text",
]

C = TypeVar("C")


class _StreamConnection(HTTPConnection[C]):
    """Any trio stream (HTTPS): trio's own operations."""

    def __init__(
        self,
        context: C,
        router: Router[C],
        remote: str,
        idle_timeout: float,
        stream: trio.abc.Stream,
    ) -> None:
        super().__init__(context, router, remote, idle_timeout)
        self.stream = stream

    async def _receive(self) -> bytes:
        self._touch()
        data = await self.stream.receive_some(RECEIVE_SIZE)
        return data if isinstance(data, bytes) else bytes(data)

    async def _send(self, data: bytearray) -> None:
        self._touch()
        await self.stream.send_all(data)

    async def _linger(self) -> None:
        if not isinstance(self.stream, trio.abc.HalfCloseableStream):
            return  # TLS has no half-close: just close
        await self.stream.send_eof()
        received = 0
        while received < LINGER_BYTES and (data := await self._receive()):
            received += len(data)


def remote_name(address: Sequence[Any]) -> str:
    """``host:port``, or ``[host]:port`` for IPv6, as the logs name a client."""
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def serve_http_connection(
    context: C,
    router: Router[C],
    stream: trio.SocketStream,
    idle_timeout: float = IDLE_TIMEOUT,
    tls: ssl.SSLContext | None = None,
) -> None:
    """Serve one HTTP (or, given ``tls``, HTTPS) client until it goes away; never raises.

    Over TLS the handshake happens on the first read, under the same idle deadline."""
    try:
        remote = remote_name(stream.socket.getpeername())
    except OSError:
        return
    connection: HTTPConnection[C]
    if tls is not None:
        served = trio.SSLStream(stream, tls, server_side=True, https_compatible=True)
        connection = _StreamConnection(context, router, remote, idle_timeout, served)
        await serve_connection(served, connection.run, router.log, f"HTTP {remote}")
        return
    # A second socket object on the stream's descriptor, for calls that skip trio; detached
    # afterwards, so the descriptor is closed once, by the stream.
    trio_sock = stream.socket
    sock = socket.socket(trio_sock.family, trio_sock.type, trio_sock.proto, trio_sock.fileno())
    try:
        connection = SocketConnection(context, router, remote, idle_timeout, sock)
        await serve_connection(stream, connection.run, router.log, f"HTTP {remote}")
    finally:
        sock.detach()
