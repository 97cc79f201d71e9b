"""The HTTP server of the daemons (nsqd, nsqlookupd, authd): llhttp's parser driven on trio.

One task per connection. One read, every request it completes is answered in turn
(pipelining), and all answers to one read leave in one send; handlers are plain functions
(``http_messages``), so nothing is created per request but the request and its bytes.

A plain TCP connection is read and written with direct, non-blocking socket calls, waiting on
trio only when the call would block: a trio stream operation costs ~12 us of scheduler work
(PERFORMANCE.md) even when the data is already there, about as much as a whole ``POST /pub``
otherwise. So that one busy client cannot starve the others, a connection whose reads never
block yields to trio every ``_STREAK`` reads. HTTPS keeps trio's TLS stream.

The idle deadline (a client silent, or not reading, for ``idle_timeout``) lives on one cancel
scope, moved forward only when it has fallen ``_SLACK`` behind: cheaper than a deadline per
operation, and a silent client is dropped between ``idle_timeout`` and 1.125 times it.
Closing with unread input makes the kernel reset the connection, which can destroy our answer
before the client reads it: so the server half-closes, and drops input for a moment (as Go does).
A bug in a handler answers 500 ``INTERNAL_ERROR``, is logged with its traceback, and closes that
connection only. bench/README.md has the measurements ("what each step bought").
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Coroutine, Sequence
from typing import Any, Generic, TypeVar

import trio

from .connection import serve_connection
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
from .http_wire import CONTINUE, Exchange, RefusedError, RequestParser, write_response

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
    "serve_http_connection",
    "text",
]

C = TypeVar("C")
Pending = Coroutine[Any, Any, Response]

RECEIVE_SIZE = 64 * 1024
IDLE_TIMEOUT = 60.0  # a connection silent (or not reading) for this long is closed
LINGER_TIME = 0.5
LINGER_BYTES = 256 * 1024
_SLACK = 0.125  # the idle deadline is moved forward once it lags this share of the timeout
_STREAK = 16  # reads in a row that found data before the connection yields to trio


def _allow(methods: dict[str, Any]) -> tuple[bytes, bytes]:
    return b"Allow", ", ".join([*sorted(methods), "OPTIONS"]).encode()


class HTTPConnection(Generic[C]):
    """Serves the requests of one client until it closes, falls silent, or must be closed.

    The transport is the subclass's: ``_receive`` (b"" at the end), ``_send``, ``_linger``.
    """

    idle: trio.CancelScope  # while ``run`` runs: its deadline is the idle timeout's

    def __init__(self, context: C, router: Router[C], remote: str, idle_timeout: float) -> None:
        self.context = context
        self.router = router
        self.remote = remote
        self.idle_timeout = idle_timeout
        self.parser = RequestParser(context, router)
        self.out = bytearray()
        self.closing = False  # no request after the current answers
        self.linger = False  # closing while the client may still be sending: half-close first
        # The last read held several requests or filled the buffer: more is likely waiting,
        # so the next read is tried before asking trio to wait (a client that waits for each
        # answer would only cost a read that finds nothing).
        self.busy = True
        self.pending: Pending | None = None  # an answer to await before anything else
        self._answered = 0  # of parser.ready
        self._waiting: tuple[Exchange[C], bool] | None = None  # whose answer is pending
        self._refusal: RefusedError | None = None

    async def run(self) -> None:
        deadline = trio.current_time() + self.idle_timeout * (1 + _SLACK)
        with trio.CancelScope(deadline=deadline) as self.idle:
            await self._serve()
            if self.linger:
                # as Go: only when input may be left unread; LINGER_TIME that nothing moves
                self.idle_timeout = 0.0
                self.idle.deadline = trio.current_time() + LINGER_TIME
                await self._linger()

    def _touch(self) -> None:
        """Push the idle deadline back, if it has fallen behind by more than the slack."""
        now = trio.current_time()
        if self.idle.deadline < now + self.idle_timeout:
            self.idle.deadline = now + self.idle_timeout * (1 + _SLACK)

    async def _serve(self) -> None:
        while True:
            while self.pending is not None:
                assert self._waiting is not None
                exchange, close = self._waiting
                self._write(exchange, await self.pending, close)
                self.pending = self._answer_ready()
            if self.out:
                answers, self.out = self.out, bytearray()
                await self._send(answers)
            if self.closing or not (data := await self._receive()):
                return
            self.take(data)

    def take(self, data: bytes) -> None:
        """Parse one read and answer the requests it completes, in order, into ``out``, up to
        an answer that is still ``pending``."""
        try:
            self.parser.feed(data)
            self.busy = len(self.parser.ready) > 1 or len(data) == RECEIVE_SIZE
        except RefusedError as refusal:
            self._refusal = refusal
        self.pending = self._answer_ready()

    def _answer_ready(self) -> Pending | None:
        ready = self.parser.ready
        while self._answered < len(ready) and not self.closing:
            exchange = ready[self._answered]
            self._answered += 1
            response, close = self._dispatch(exchange)
            if response.pending is not None:
                self._waiting = exchange, close
                return response.pending
            self._write(exchange, response, close)
        ready.clear()
        self._answered = 0
        refusal, self._refusal = self._refusal, None
        parser = self.parser
        if refusal is not None:
            self._refuse(refusal)
        elif parser.expects_continue and not parser.in_head and not self.closing:
            parser.expects_continue = False
            self.out += CONTINUE
        return None

    def _refuse(self, refusal: RefusedError) -> None:
        response = refusal.response
        if response is not None and not self.closing:
            if response.status == 400:
                self.router.log.info(
                    "HTTP: bad request from %s - %s", self.remote, refusal.__cause__ or "no Host"
                )
            write_response(self.out, "", response, True)
        self.closing = self.linger = True

    def _write(self, exchange: Exchange[C], response: Response, close: bool) -> None:
        request = exchange.request
        route = exchange.route
        if route is None or route.logged:
            # DEBUG: the admin polls every node's /stats; at INFO that drowns what matters
            self.router.log.debug(
                "%d %s %s (%s)",
                response.status,
                request.method,
                exchange.target.decode("ascii", "replace"),
                self.remote,
            )
        write_response(self.out, request.method, response, close or not exchange.keep_alive)
        if close or not exchange.keep_alive:
            self.closing = True
            self.linger = close

    def _dispatch(self, exchange: Exchange[C]) -> tuple[Response, bool]:
        """The answer, and whether the connection must close after it."""
        request, methods, route = exchange.request, exchange.methods, exchange.route
        if methods is None:
            return error(404, "NOT_FOUND"), request.truncated
        if route is None and request.method == "OPTIONS":
            return Response(200, headers=(_allow(methods),)), request.truncated
        if route is None:
            return error(405, "METHOD_NOT_ALLOWED", _allow(methods)), request.truncated
        if request.truncated and not route.handler_checks_size:
            return error(413, exchange.too_big), True
        try:
            return route.handler(self.context, request), request.truncated
        except HTTPError as err:
            return error(err.status, err.message), request.truncated
        except Exception:
            self.router.log.exception("HTTP: internal error in %s %s", request.method, request.path)
            return error(500, "INTERNAL_ERROR"), True

    async def _receive(self) -> bytes:
        raise NotImplementedError

    async def _send(self, data: bytearray) -> None:
        raise NotImplementedError

    async def _linger(self) -> None:
        raise NotImplementedError


class SocketConnection(HTTPConnection[C]):
    """Plain TCP: direct socket calls; trio is asked to wait only when a call would block."""

    def __init__(
        self, context: C, router: Router[C], remote: str, idle_timeout: float, sock: socket.socket
    ) -> None:
        super().__init__(context, router, remote, idle_timeout)
        self.sock = sock
        self._streak = 0

    async def run(self) -> None:
        try:
            await super().run()
        except OSError:
            pass  # the client went away (reset, timed out): trio's streams say the same

    def serve_at_once(self) -> bool:
        """Serve what has already arrived, as far as that needs no wait; True when the
        connection is then done with and may simply be closed (no ``run`` needed).

        A client that sends its request as soon as it connects, and asks to close after the
        answer, is served without a task of its own."""
        try:
            data = self.sock.recv(RECEIVE_SIZE)
        except BlockingIOError:
            return False
        if not data:
            return True
        self.take(data)
        if self.pending is None and self.out:
            try:
                del self.out[: self.sock.send(self.out)]
            except BlockingIOError:
                pass
        return self.closing and not self.linger and not self.out and self.pending is None

    async def _receive(self) -> bytes:
        sock = self.sock
        try:
            if not self.busy:
                raise BlockingIOError
            data = sock.recv(RECEIVE_SIZE)
        except BlockingIOError:
            pass
        else:
            self._streak += 1
            if self._streak >= _STREAK:  # a client that never lets us block: others' turn
                self._streak = 0
                self._touch()
                await trio.lowlevel.checkpoint()
            return data
        self._streak = 0
        while True:
            self._touch()
            await trio.lowlevel.wait_readable(sock)
            try:
                return sock.recv(RECEIVE_SIZE)
            except BlockingIOError:
                continue

    async def _send(self, data: bytearray) -> None:
        sock = self.sock
        try:
            sent = sock.send(data)
        except BlockingIOError:
            sent = 0
        if sent == len(data):
            return
        with memoryview(data) as view:
            while sent < len(data):
                self._touch()
                await trio.lowlevel.wait_writable(sock)
                try:
                    sent += sock.send(view[sent:])
                except BlockingIOError:
                    continue

    async def _linger(self) -> None:
        self.sock.shutdown(socket.SHUT_WR)
        received = 0
        while received < LINGER_BYTES and (data := await self._receive()):
            received += len(data)


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
