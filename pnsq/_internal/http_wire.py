"""HTTP/1.1 bytes for the daemons' server: requests parsed by llhttp, answers written by hand.

Requests: httptools (llhttp, C) calls back into ``RequestParser`` as it walks the bytes; a
parse costs ~0.7 us against ~12 us for a request cycle through h11 compiled with mypyc, which
was the largest single cost of ``POST /pub`` (measurements in bench/README.md). Every request
whose bytes are complete lands in ``ready`` as an ``Exchange``; what must end the connection
(a body over the route's limit, a head over ``MAX_HEAD``, bytes that are not HTTP/1.x) stops
the parse, and whatever completed before it is still answered first, in order.

Where llhttp is stricter than Go's net/http (what NSQ 1.3 answers with), the error path does
as Go: a method llhttp does not know is routed (405, 404) from a head read by ``http_odd``; a
folded header line is unfolded and parsed again; a Transfer-Encoding other than "chunked" is
501; the parse goes on after a bodyless Upgrade or CONNECT. The common path pays nothing.

The route is found when the head is complete, because the body limit depends on it: a
Content-Length over the limit is refused at once (413, the route's code), and a body that
grows past the limit (chunked) stops being kept; its request reaches the handler with
``truncated`` set, and the connection is closed after the answer.

Answers: a handful of status lines and headers, pre-built as bytes, and a Date header
formatted once per second; no per-answer object besides the bytes.
"""

from __future__ import annotations

import re
import time
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING, Generic, TypeVar
from urllib.parse import unquote

import httptools

from .http_messages import OK, TEXT, Request, Response, Route, Router, error, text
from .http_odd import message_start, parse_head, unfold

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["MAX_HEAD", "Exchange", "RefusedError", "RequestParser", "write_response"]

C = TypeVar("C")

MAX_HEAD = 16 * 1024  # request line and headers; h11's limit, which the server had before


class RefusedError(Exception):
    """The parse stops: ``response`` (if any) answers, then the connection closes;
    ``bad_request`` says why a client's bytes were not HTTP we take (for the log)."""

    def __init__(self, response: Response | None, bad_request: str = "") -> None:
        super().__init__(response.status if response else "close")
        self.response = response
        self.bad_request = bad_request


_METHODS = {m.encode(): m for m in ("GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS")}
_HEAD_TOO_BIG = error(431, "REQUEST_HEADER_FIELDS_TOO_LARGE")
_HEAD_TOO_BIG_WHY = f"request head over {MAX_HEAD} bytes"
_NO_HOST = error(400, "BAD_REQUEST")
# Go's net/http: one Transfer-Encoding, "chunked", or 501 with this text (HTTP/1.1 only)
_UNSUPPORTED_TE = text("Unsupported transfer encoding", 501)
_TE_ERRORS = (
    "Request has invalid `Transfer-Encoding`",
    "Invalid `Transfer-Encoding` header value",
    "Empty Transfer-Encoding",
)
_FOLD_ERRORS = ("Unexpected whitespace after header value", "Invalid header value char")
_HEAD_END = re.compile(rb"\r?\n\r?\n")


class Exchange(Generic[C]):
    """One request and what the router said about it."""

    __slots__ = ("keep_alive", "methods", "request", "route", "target", "too_big")

    def __init__(
        self,
        request: Request,
        target: bytes,
        methods: dict[str, Route[C]] | None,
        route: Route[C] | None,
        too_big: str,
        keep_alive: bool,
    ) -> None:
        self.request = request
        self.target = target
        self.methods = methods
        self.route = route
        self.too_big = too_big
        self.keep_alive = keep_alive


def _split_target(target: bytes) -> tuple[str, str]:
    text = target.decode("ascii", "replace")
    if "://" in text.partition("?")[0]:  # absolute form: http://host:port/path?query
        text = "/" + text.split("://", 1)[1].partition("/")[2]
    path, _, query = text.partition("?")
    return _unquote(path), query


def _unquote(path: str) -> str:
    return unquote(path) if "%" in path else path


class RequestParser(Generic[C]):
    """llhttp's callbacks: the requests of one connection, in order, into ``ready``."""

    def __init__(self, context: C, router: Router[C]) -> None:
        self.context = context
        self.router = router
        self.ready: list[Exchange[C]] = []
        self.in_message = False  # between the first byte of a request and its last
        self.in_head = False  # between the first byte of a request and the end of its head
        self.expects_continue = False  # the current request waits for "100 Continue"
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_size = self._unreported = 0
        self._messages = 0
        self._content_length = 0
        self._has_host = self._version_matters = False
        self._exchange: Exchange[C] | None = None
        self._body: list[bytes] = []
        self._body_size = 0
        self._limit = 0
        self._held = b""

    def feed(self, data: bytes) -> None:
        """Parse ``data``; raises RefusedError when the connection must answer it and close."""
        progress = (self._messages, self._head_size, self._body_size)
        at_boundary = not self.in_message
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, RefusedError):
                raise exc.__context__ from None
            raise
        except httptools.HttpParserUpgrade as upgrade:
            self._after_upgrade(data[upgrade.args[0] :])
            return
        except httptools.HttpParserInvalidMethodError as exc:
            self._hold(data, self._messages - progress[0], at_boundary, str(exc), self._feed_odd)
            return
        except httptools.HttpParserError as exc:
            if str(exc) in _FOLD_ERRORS:  # perhaps a folded header line, which Go takes
                self._hold(data, self._messages - progress[0], at_boundary, str(exc), self._unfold)
                return
            raise self._refusal(str(exc)) from exc
        if self.in_message and progress == (self._messages, self._head_size, self._body_size):
            # Nothing came out of a whole read: llhttp holds a header (or trailer) it has not
            # reported yet. Count it, so that one sent forever is refused (a bound on memory:
            # complete headers are counted exactly when reported).
            self._unreported += len(data)
            if self._head_size + self._unreported > MAX_HEAD:
                raise RefusedError(_HEAD_TOO_BIG, _HEAD_TOO_BIG_WHY)

    def _after_upgrade(self, rest: bytes) -> None:
        """llhttp stops after an Upgrade or CONNECT request (ready), before any body: Go's
        net/http answers it as any other and reads on, which is done here when it has no body;
        with one, the connection closes after the answer (where its body ends is llhttp's)."""
        if self._content_length or any(n == b"transfer-encoding" for n, _ in self._headers):
            raise RefusedError(None)
        if rest:
            self.feed(rest)

    def _refusal(self, why: str) -> RefusedError:
        if why in _TE_ERRORS and self._parser.get_http_version() == "1.1":
            return RefusedError(_UNSUPPORTED_TE, why)  # HTTP/1.0: Go ignores the header
        return RefusedError(error(400, "BAD_REQUEST"), why)

    def _hold(
        self, data: bytes, begun: int, at_boundary: bool, why: str, then: Callable[[bytes], None]
    ) -> None:
        """llhttp refused a request Go would read: hold its bytes (``http_odd``), from where it
        starts if that is known (``data`` starts at a request), and have ``then`` take them."""
        if begun == 0 or not at_boundary:
            raise RefusedError(error(400, "BAD_REQUEST"), why)  # its start was in an earlier read
        self._held = data[message_start(data, begun - 1) :]
        self.feed = then  # type: ignore[method-assign,assignment] # until ``then`` is done
        then(b"")

    def _held_head(self, data: bytes) -> tuple[bytes, bytes] | None:
        """The held request's head (without its blank line) and what follows, once whole."""
        held = self._held = self._held + data
        end = _HEAD_END.search(held, 0, MAX_HEAD + 4)
        if end is None:
            if len(held) > MAX_HEAD:
                raise RefusedError(_HEAD_TOO_BIG, _HEAD_TOO_BIG_WHY)
            return None
        return held[: end.start()], held[end.end() :]

    def _feed_odd(self, data: bytes) -> None:
        """A method llhttp does not know: route the head, queue it, then close."""
        if (whole := self._held_head(data)) is None:
            return
        odd = parse_head(whole[0] + b"\r\n")
        if odd is None:
            raise RefusedError(error(400, "BAD_REQUEST"), "malformed request line or header")
        if odd.version == (1, 1) and not odd.has_host:
            raise RefusedError(_NO_HOST, "HTTP/1.1 without Host")
        path, query = _split_target(odd.target)
        methods, param = self.router.find(path)
        route = methods.get(odd.method) if methods else None
        request = Request(odd.method, path, query, b"", False, param)
        # its body is not read: the connection closes after the answer (405, 404)
        self.ready.append(Exchange(request, odd.target, methods, route, "BODY_TOO_BIG", False))
        raise RefusedError(None)

    def _unfold(self, data: bytes) -> None:
        """A header llhttp refused: unfolded, the request is parsed again by a fresh llhttp."""
        if (whole := self._held_head(data)) is None:
            return
        head, rest = whole
        unfolded = unfold(head)
        if unfolded is None:  # nothing folded: llhttp was right
            raise RefusedError(error(400, "BAD_REQUEST"), "invalid header value")
        del self.feed
        self._parser = httptools.HttpRequestParser(self)
        self.in_message = False
        self.feed(unfolded + b"\r\n\r\n" + rest)

    def on_message_begin(self) -> None:
        self.in_head = self.in_message = True
        self._messages += 1
        self.expects_continue = False
        self._url = b""
        self._headers = []
        self._head_size = self._unreported = self._content_length = 0
        self._has_host = self._version_matters = False

    def on_url(self, url: bytes) -> None:
        self._url += url  # in pieces when the line is split across reads
        self._head_size += len(url)
        self._unreported = 0
        if self._head_size > MAX_HEAD:
            raise RefusedError(_HEAD_TOO_BIG, _HEAD_TOO_BIG_WHY)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4  # trailers too: one bound for both
        self._unreported = 0  # llhttp has reported what it held
        if self._head_size > MAX_HEAD:
            raise RefusedError(_HEAD_TOO_BIG, _HEAD_TOO_BIG_WHY)
        if not self.in_head:
            return  # a chunked body's trailer: ignored, as h11's server did
        name = name.lower()
        self._headers.append((name, value.rstrip(b" \t")))
        if name == b"content-length":
            self._content_length = int(value)  # llhttp has checked it: digits, only one
        elif name == b"host":
            self._has_host = True
        elif name == b"connection":
            self._version_matters = True
        elif name == b"expect" and value.lower() == b"100-continue":
            self.expects_continue = self._version_matters = True

    def on_headers_complete(self) -> None:
        self.in_head = False
        parser = self._parser
        # HTTP/1.0 closes after each answer, as h11 did, whatever its Connection header says.
        # Without a Connection header llhttp's keep-alive already means HTTP/1.1: the version
        # is asked for only when a header makes it matter.
        keep_alive = parser.should_keep_alive()
        if self._version_matters or not self._has_host:
            is_1_1 = parser.get_http_version() == "1.1"
            if not self._has_host and is_1_1:
                raise RefusedError(_NO_HOST, "HTTP/1.1 without Host")  # as h11, Go
            keep_alive = keep_alive and is_1_1
            self.expects_continue = self.expects_continue and is_1_1
        raw_method = parser.get_method()
        method = _METHODS.get(raw_method) or raw_method.decode("ascii")
        target = self._url
        path, query = _split_target(target)
        router = self.router
        methods, param = router.find(path)
        route = methods.get(method) if methods else None
        limit_of = route.body_limit if route and route.body_limit else router.default_limit
        self._limit = limit_of(self.context)
        too_big = route.too_big if route else "BODY_TOO_BIG"
        if self._content_length > self._limit:
            raise RefusedError(error(413, too_big))
        request = Request(method, path, query, b"", False, param, self._headers)
        self._exchange = Exchange(request, target, methods, route, too_big, keep_alive)
        self._body = []
        self._body_size = 0

    def on_chunk_header(self) -> None:
        # llhttp takes "gzip, chunked" as chunked, where Go answers 501 to anything but one
        # "chunked": checked at a chunked body's first chunk, so other requests pay nothing.
        if self._body_size == 0:
            codings = [value for name, value in self._headers if name == b"transfer-encoding"]
            if (
                codings != [b"chunked"]
                and [c.lower() for c in codings] != [b"chunked"]
                and self._parser.get_http_version() == "1.1"
            ):
                raise RefusedError(_UNSUPPORTED_TE, "Transfer-Encoding other than chunked")

    def on_body(self, body: bytes) -> None:
        self.expects_continue = False
        self._body_size += len(body)
        self._unreported = 0
        if self._body_size <= self._limit:
            self._body.append(body)
            return
        exchange = self._exchange
        assert exchange is not None  # llhttp gives a body only after a head
        exchange.request.truncated = True  # the handler says 413, and the connection closes
        exchange.keep_alive = False
        self.ready.append(exchange)
        raise RefusedError(None)

    def on_message_complete(self) -> None:
        exchange = self._exchange
        assert exchange is not None
        body = self._body
        if body:
            exchange.request.body = body[0] if len(body) == 1 else b"".join(body)
        self.expects_continue = self.in_message = False
        self.ready.append(exchange)


# -- answers ------------------------------------------------------------------------------------

_NSQ_HEADER = b"X-Nsq-Content-Type: nsq; version=1.0\r\n"
_HEADS = {
    s.value: b"HTTP/1.1 %d %s\r\n%sDate: " % (s.value, s.phrase.encode(), _NSQ_HEADER)
    for s in HTTPStatus
}
_OK_TAIL = b"Content-Type: %s\r\nContent-Length: 2\r\n\r\nOK" % TEXT
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

_date_cache: tuple[int, bytes] = (0, b"")


def http_date() -> bytes:
    """``Sun, 06 Dec 2026 06:54:02 GMT\\r\\n``, formatted once per second."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True).encode() + b"\r\n")
    return _date_cache[1]


def write_response(out: bytearray, method: str, response: Response, close: bool) -> None:
    """Append the answer's bytes (the tail of the common ``200 OK`` is pre-built)."""
    out += _HEADS[response.status]
    out += http_date()
    if response is OK and not close and method != "HEAD":
        out += _OK_TAIL
        return
    body = response.body
    _write_headers(out, response.headers)
    if response.content_type is not None:
        out += b"Content-Type: %s\r\n" % response.content_type
    out += b"Content-Length: %d\r\n" % len(body)
    if close:
        out += b"Connection: close\r\n"
    out += b"\r\n"
    if body and method != "HEAD":
        out += body


def _write_headers(out: bytearray, headers: Sequence[tuple[bytes, bytes]]) -> None:
    for name, value in headers:
        out += b"%s: %s\r\n" % (name, value)
