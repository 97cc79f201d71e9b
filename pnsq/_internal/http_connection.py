"""One HTTP connection of the daemons' server: its requests answered in order, whatever carries them.

A read is handed to ``take``: every request it completes is answered in turn (pipelining) into
one buffer, which leaves in one send, synchronously up to an answer that must be awaited (a
durable publish waits for its fsync): ``run`` awaits it, then goes on. Handlers are plain
functions (``http_messages``), so nothing is created per request but the request and its
bytes, and the accept loop can answer a connection's first read itself (``http_accept``).

The idle deadline (a client silent, or not reading, for ``idle_timeout``) lives on one cancel
scope, moved forward only when it has fallen ``_SLACK`` behind: cheaper than a deadline per
operation, and a silent client is dropped between ``idle_timeout`` and 1.125 times it.
Closing with unread input makes the kernel reset the connection, which can destroy our answer
before the client reads it: so the server then half-closes, and drops input for a moment (as
Go does). A bug in a handler answers 500 ``INTERNAL_ERROR``, is logged with its traceback, and
closes that connection only. The transports are subclasses: ``http_socket.SocketConnection``
(plain TCP), ``http_server``'s stream connection (HTTPS).
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, Generic, TypeVar

import trio

from .http_messages import HTTPError, Response, Router, error
from .http_wire import CONTINUE, Exchange, RefusedError, RequestParser, write_response

__all__ = ["IDLE_TIMEOUT", "RECEIVE_SIZE", "HTTPConnection"]

C = TypeVar("C")
Pending = Coroutine[Any, Any, Response]

RECEIVE_SIZE = 64 * 1024
IDLE_TIMEOUT = 60.0  # a connection silent (or not reading) for this long is closed
LINGER_TIME = 0.5
LINGER_BYTES = 256 * 1024
_SLACK = 0.125  # the idle deadline is moved forward once it lags this share of the timeout


def _allow(methods: dict[str, Any]) -> tuple[bytes, bytes]:
    # as httprouter v1.3.0 (NSQ 1.3's): the path's methods and OPTIONS, sorted together
    return b"Allow", ", ".join(sorted({*methods, "OPTIONS"})).encode()


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
            if refusal.bad_request:
                self.router.log.info(
                    "HTTP: bad request from %s - %s", self.remote, refusal.bad_request
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
