"""The HTTP server of both daemons (nsqd and nsqlookupd): h11 driven directly on trio.

bench/http_server_choice.py measured h11 driven by hand against hypercorn's trio worker on a
/ping handler, and the direct loop won (figures in that file), so no ASGI server sits in
between. One task per connection: one big read, every request h11 has buffered is answered in
turn (pipelining), and all answers to one read leave in one send. Handlers are plain functions
``(context, request) -> Response`` where the context is the daemon (an ``NSQD``, a
``Lookupd``): nothing in the APIs waits, so no task is created per request and each answer is a
consistent snapshot of the daemon. A ``Router`` holds a daemon's route table.

A body is bounded before it is read: a Content-Length over the route's limit is refused with
413 at once, and reading stops as soon as the body passes the limit (the connection is then
closed, since the rest of the body is never read). Error answers are ``{"message": "CODE"}``
with NSQ's codes; every answer carries NSQ's ``X-NSQ-Content-Type`` header. A bug in a handler
answers 500 ``INTERNAL_ERROR``, is logged with its traceback, and closes that connection only.
"""

from __future__ import annotations

import json
import logging
import re
import ssl
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import unquote, unquote_plus

if TYPE_CHECKING:
    import h11
else:
    try:  # h11 compiled with mypyc: the same code and API, 2.7x faster per request here
        import h11_mypyc as h11
    except ImportError:
        import h11
import trio

from .connection import serve_connection

__all__ = [
    "EMPTY",
    "OK",
    "HTTPConnection",
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

RECEIVE_SIZE = 64 * 1024
IDLE_TIMEOUT = 60.0  # a connection silent (or not reading) for this long is closed
# Closing with unread input makes the kernel reset the connection, which can destroy our answer
# before the client reads it: so first half-close, and drop input for a moment (as Go does).
LINGER_TIME = 0.5
LINGER_BYTES = 256 * 1024

_TEXT = b"text/plain; charset=utf-8"
_JSON = b"application/json; charset=utf-8"
_NSQ_HEADER = (b"X-Nsq-Content-Type", b"nsq; version=1.0")
_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


class HTTPError(Exception):
    """An answer with NSQ's error shape: ``status`` and ``{"message": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: bytes | None = None  # none for an empty body, as Go's net/http
    headers: tuple[tuple[bytes, bytes], ...] = ()
    pending: Coroutine[Any, Any, Response] | None = None  # the real answer, awaited first


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: str
    body: bytes
    truncated: bool  # reading stopped when the body passed the route's limit
    path_param: str = ""  # the last segment of a ``/prefix/:name`` route
    headers: Sequence[tuple[bytes, bytes]] = ()  # names in lower case, as h11 gives them

    def header(self, name: bytes) -> bytes | None:
        """The first value of header ``name`` (lower case), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def params(self) -> dict[str, list[str]]:
        """The query string as Go's url.ParseQuery reads it; 400 INVALID_REQUEST if malformed."""
        try:
            return parse_query(self.query)
        except ValueError:
            raise HTTPError(400, "INVALID_REQUEST") from None


def parse_query(query: str) -> dict[str, list[str]]:
    """``a=1&b=x+y`` -> ``{"a": ["1"], "b": ["x y"]}``; ValueError where Go's parser errs."""
    params: dict[str, list[str]] = {}
    for part in query.split("&"):
        if not part:
            continue
        if ";" in part or _BAD_ESCAPE.search(part):
            raise ValueError(part)
        key, _, value = part.partition("=")
        params.setdefault(unquote_plus(key), []).append(unquote_plus(value))
    return params


_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def first(params: dict[str, list[str]], key: str) -> str | None:
    """The first value of ``key``, as Go's ``url.Values.Get`` (None when absent)."""
    values = params.get(key)
    return values[0] if values else None


# -- responses --------------------------------------------------------------------------------


def text(body: str | bytes, status: int = 200) -> Response:
    data = body.encode() if isinstance(body, str) else body
    return Response(status, data, _TEXT if data else None)


def json_response(value: Any, status: int = 200) -> Response:
    return Response(status, _ENCODE(value).encode(), _JSON)


def error(status: int, message: str, *headers: tuple[bytes, bytes]) -> Response:
    return Response(status, _ENCODE({"message": message}).encode(), _JSON, headers)


EMPTY = Response(200)
OK = text("OK")


# -- routing ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Route(Generic[C]):
    handler: Callable[[C, Request], Response]
    body_limit: Callable[[C], int] | None = None  # None: the router's default limit
    too_big: str = "BODY_TOO_BIG"  # the 413 code for a body over the limit
    handler_checks_size: bool = False  # the handler reports a truncated body itself
    logged: bool = True  # NSQ logs every request but publishes


class Router(Generic[C]):
    """A daemon's routes: ``{path: {method: Route}}``; a path ending in ``/:name`` matches any
    one segment there, given to the handler as ``request.path_param``.

    The table is read at every request, so changing it (tests do) takes effect at once.
    """

    def __init__(
        self,
        routes: dict[str, dict[str, Route[C]]],
        default_limit: Callable[[C], int],
        log: logging.Logger,
    ) -> None:
        self.routes = routes
        self.default_limit = default_limit
        self.log = log
        self._prefixes = [(path.rpartition("/")[0] + "/", path) for path in routes if "/:" in path]

    def find(self, path: str) -> tuple[dict[str, Route[C]] | None, str]:
        """The routes of ``path`` by method, and its ``:name`` segment if it has one."""
        methods = self.routes.get(path)
        if methods is None:
            for prefix, pattern in self._prefixes:
                if path.startswith(prefix):
                    param = path[len(prefix) :]
                    if param and "/" not in param:
                        return self.routes[pattern], param
        return methods, ""


def _allow(methods: dict[str, Any]) -> tuple[bytes, bytes]:
    return b"Allow", ", ".join([*sorted(methods), "OPTIONS"]).encode()


def _split_target(target: bytes) -> tuple[str, str]:
    text = target.decode("ascii", "replace")
    if "://" in text.partition("?")[0]:  # absolute form: http://host:port/path?query
        text = "/" + text.split("://", 1)[1].partition("/")[2]
    path, _, query = text.partition("?")
    return unquote(path), query


# -- one connection -----------------------------------------------------------------------------


class _ClientGoneError(Exception):
    """The client went away in the middle of a request."""


class HTTPConnection(Generic[C]):
    """Serves the requests of one client until it closes, falls silent, or must be closed."""

    def __init__(
        self,
        context: C,
        router: Router[C],
        stream: trio.abc.Stream,
        remote: str,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        self.context = context
        self.router = router
        self.stream = stream
        self.remote = remote
        self.idle_timeout = idle_timeout
        self.conn = h11.Connection(h11.SERVER)
        self.out = bytearray()
        self.closing = False  # we decided to close, maybe before the client finished sending
        self.idle = trio.CancelScope()

    async def run(self) -> None:
        # One scope for the connection, its deadline pushed back before every read and write:
        # cheaper than a scope per operation, and a client silent that long is dropped.
        with trio.CancelScope() as self.idle:
            try:
                await self._serve()
            except _ClientGoneError:
                return
        if self.closing and not self.idle.cancelled_caught:
            await self._linger()

    async def _serve(self) -> None:
        conn = self.conn
        try:
            while True:
                event = await self._next_event()
                if not isinstance(event, h11.Request) or not await self._answer(event):
                    break
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    break
                conn.start_next_cycle()
        except h11.RemoteProtocolError as exc:
            self._bad_request(exc)
        await self._flush()

    async def _linger(self) -> None:
        if not isinstance(self.stream, trio.abc.HalfCloseableStream):
            return  # TLS has no half-close: just close
        await self.stream.send_eof()
        received = 0
        with trio.move_on_after(LINGER_TIME):
            while received < LINGER_BYTES:
                data = await self.stream.receive_some(RECEIVE_SIZE)
                if not data:
                    break
                received += len(data)

    async def _next_event(self) -> type[h11.PAUSED | h11.NEED_DATA] | h11.Event:
        """The next event; answers queued so far are sent before waiting for more bytes."""
        conn = self.conn
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            await self._flush()
            self.idle.deadline = trio.current_time() + self.idle_timeout
            data = await self.stream.receive_some(RECEIVE_SIZE)
            conn.receive_data(data if isinstance(data, bytes) else bytes(data))

    async def _flush(self) -> None:
        if self.out:
            data, self.out = self.out, bytearray()
            self.idle.deadline = trio.current_time() + self.idle_timeout
            await self.stream.send_all(data)

    async def _answer(self, event: h11.Request) -> bool:
        """Read the body, answer; False when the connection must close afterwards."""
        method = event.method.decode("ascii")
        path, query = _split_target(event.target)
        router = self.router
        methods, param = router.find(path)
        route = methods.get(method) if methods else None
        limit_of = route.body_limit if route and route.body_limit else router.default_limit
        limit = limit_of(self.context)
        too_big = route.too_big if route else "BODY_TOO_BIG"
        if _content_length(event) > limit:
            self._respond(method, error(413, too_big), close=True)
            return False
        body, truncated = await self._read_body(limit)
        request = Request(method, path, query, body, truncated, param, event.headers)
        if methods is None:
            response = error(404, "NOT_FOUND")
        elif route is None and method == "OPTIONS":
            response = Response(200, headers=(_allow(methods),))
        elif route is None:
            response = error(405, "METHOD_NOT_ALLOWED", _allow(methods))
        elif truncated and not route.handler_checks_size:
            response = error(413, too_big)
        else:
            response, crashed = self._call(route, request)
            truncated = truncated or crashed
            if response.pending is not None:
                response = await response.pending
        close = truncated
        if route is None or route.logged:
            # DEBUG: the admin polls every node's /stats; at INFO that drowns what matters
            router.log.debug(
                "%d %s %s (%s)", response.status, method, event.target.decode(), self.remote
            )
        self._respond(method, response, close=close)
        return not close

    def _call(self, route: Route[C], request: Request) -> tuple[Response, bool]:
        """The handler's answer, and whether it crashed (the connection then closes)."""
        try:
            return route.handler(self.context, request), False
        except HTTPError as err:
            return error(err.status, err.message), False
        except Exception:
            self.router.log.exception("HTTP: internal error in %s %s", request.method, request.path)
            return error(500, "INTERNAL_ERROR"), True

    async def _read_body(self, limit: int) -> tuple[bytes, bool]:
        """The request body, or (b"", True) as soon as it passes ``limit`` bytes."""
        conn = self.conn
        if conn.client_is_waiting_for_100_continue:
            self.out += conn.send(h11.InformationalResponse(status_code=100, headers=[])) or b""
        chunks: list[bytes] = []
        size = 0
        while True:
            event = await self._next_event()
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > limit:
                    return b"", True
                chunks.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return b"".join(chunks), False
            else:
                raise _ClientGoneError

    def _respond(self, method: str, response: Response, *, close: bool) -> None:
        headers = [_NSQ_HEADER, (b"Date", _http_date()), *response.headers]
        if response.content_type is not None:
            headers.append((b"Content-Type", response.content_type))
        headers.append((b"Content-Length", b"%d" % len(response.body)))
        if close:
            headers.append((b"Connection", b"close"))
            self.closing = True
        status = response.status
        out, send = self.out, self.conn.send
        out += send(h11.Response(status_code=status, headers=headers, reason=_REASONS[status]))
        if response.body and method != "HEAD":
            out += send(h11.Data(data=response.body))
        out += send(h11.EndOfMessage())

    def _bad_request(self, exc: h11.RemoteProtocolError) -> None:
        if self.conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        self.router.log.info("HTTP: bad request from %s - %s", self.remote, exc)
        status = exc.error_status_hint
        message = "REQUEST_HEADER_FIELDS_TOO_LARGE" if status == 431 else "BAD_REQUEST"
        self._respond("", error(status, message), close=True)


def _content_length(event: h11.Request) -> int:
    for name, value in event.headers:
        if name == b"content-length":
            return int(value)  # h11 has checked it is a number
    return 0


_date_cache: tuple[int, bytes] = (0, b"")


def _http_date() -> bytes:
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True).encode())
    return _date_cache[1]


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
        host, port = stream.socket.getpeername()[:2]
    except OSError:
        return
    remote = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    served: trio.abc.Stream = stream
    if tls is not None:
        served = trio.SSLStream(stream, tls, server_side=True, https_compatible=True)
    connection = HTTPConnection(context, router, served, remote, idle_timeout)
    await serve_connection(served, connection.run, router.log, f"HTTP {remote}")
