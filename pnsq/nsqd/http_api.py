"""nsqd's HTTP API (reference §3): publishing, administration, /stats and /config.

HTTP/1.1 is h11's job, driven directly on trio: bench/http_server_choice.py measured it against
hypercorn's trio worker on a /ping handler, and the direct loop won (figures in that file), so
no ASGI server sits in between. One task per connection: one big read, every request h11 has
buffered is answered in turn (pipelining), and all answers to one read leave in one send.
Handlers are plain functions ``(nsqd, request) -> Response``: nothing in the API waits, so no
task is created per request and each answer is a consistent snapshot of the broker.

A body is bounded before it is read: a Content-Length over the route's limit is refused with
413 at once, and reading stops as soon as the body passes the limit (the connection is then
closed, since the rest of the body is never read). Error answers are ``{"message": "CODE"}``
with NSQ's codes, checked in NSQ's order (which error a client sees depends on it, B.5-B.7).
A bug in a handler answers 500 ``INTERNAL_ERROR``, is logged with its traceback, and closes
that connection only.

Two choices NSQ leaves open: a publish the broker refuses for lack of room answers 503
``QUEUE_FULL`` (NSQ only ever says 503 ``EXITING``; clients look at the status alone), and
``PUT /config/log_level`` takes the level as plain text like NSQ (``debug``) or as a JSON
string (``"debug"``).
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import re
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, unquote_plus

if TYPE_CHECKING:
    import h11
else:
    try:  # h11 compiled with mypyc: the same code and API, 2.7x faster per request here
        import h11_mypyc as h11
    except ImportError:
        import h11
import trio

from .. import NSQ_VERSION
from .._internal.connection import serve_connection
from .._internal.logging import LOG_LEVELS, parse_log_level
from ..wire.names import is_valid_name
from .options import Options
from .stats import stats_document, stats_text
from .topic import PutError

if TYPE_CHECKING:
    from .nsqd import NSQD
    from .topic import Topic

log = logging.getLogger("pnsq.nsqd")

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


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: str
    body: bytes
    truncated: bool  # reading stopped when the body passed the route's limit
    path_param: str = ""  # ``:opt`` of /config/:opt

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


def _first(params: dict[str, list[str]], key: str) -> str | None:
    values = params.get(key)
    return values[0] if values else None


# -- responses --------------------------------------------------------------------------------


def _text(body: str | bytes, status: int = 200) -> Response:
    data = body.encode() if isinstance(body, str) else body
    return Response(status, data, _TEXT if data else None)


def _json(value: Any, status: int = 200) -> Response:
    return Response(status, _ENCODE(value).encode(), _JSON)


def _error(status: int, message: str, *headers: tuple[bytes, bytes]) -> Response:
    return Response(status, _ENCODE({"message": message}).encode(), _JSON, headers)


_EMPTY = Response(200)
_OK = _text("OK")


# -- publishing -------------------------------------------------------------------------------


def _publish_topic(nsqd: NSQD, params: dict[str, list[str]]) -> Topic:
    """The ``topic`` parameter's topic, created if new (NSQ's getTopicFromQuery)."""
    name = _first(params, "topic")
    if name is None:
        raise HTTPError(400, "MISSING_ARG_TOPIC")
    if not is_valid_name(name):
        raise HTTPError(400, "INVALID_TOPIC")
    return nsqd.get_topic(name)


def _put(nsqd: NSQD, topic: Topic, bodies: list[bytes], delay: float) -> Response:
    try:
        topic.put(bodies, trio.current_time(), time.time_ns(), delay)
    except PutError as err:
        if nsqd.exiting or topic.exiting:
            raise HTTPError(503, "EXITING") from None
        log.warning("HTTP: publish to %s refused - %s", topic.name, err)
        raise HTTPError(503, "QUEUE_FULL") from None
    return _OK


_GO_INT = re.compile(r"[+-]?[0-9]+")


def _defer(params: dict[str, list[str]], options: Options) -> float:
    """``defer`` in ms, 0..max-req-timeout, as seconds; 400 INVALID_DEFER otherwise."""
    text = _first(params, "defer")
    if text is None:
        return 0.0
    valid = len(text) < 4000 and _GO_INT.fullmatch(text)  # int() refuses much longer
    if not valid or not 0 <= int(text) <= options.max_req_timeout * 1000:
        raise HTTPError(400, "INVALID_DEFER")
    return int(text) / 1000


def _pub(nsqd: NSQD, request: Request) -> Response:
    # The body is checked before the topic (B.5); its size was checked while reading it.
    if not request.body:
        raise HTTPError(400, "MSG_EMPTY")
    params = request.params()
    topic = _publish_topic(nsqd, params)
    delay = _defer(params, nsqd.options)
    return _put(nsqd, topic, [request.body], delay)


_BOOL_PARAMS = {"true": True, "1": True, "false": False, "0": False}
_INT32 = struct.Struct(">i")


def _mpub(nsqd: NSQD, request: Request) -> Response:
    params = request.params()
    topic = _publish_topic(nsqd, params)  # created even if the body is then refused (B.7)
    binary = _first(params, "binary")
    if request.truncated:
        raise HTTPError(413, "BODY_TOO_BIG")
    options = nsqd.options
    if binary is not None and _BOOL_PARAMS.get(binary, True):
        if binary not in _BOOL_PARAMS:
            log.warning("deprecated value '%s' used for /mpub binary param", binary)
        bodies = binary_mpub_bodies(request.body, options.max_msg_size, options.max_body_size)
    else:
        bodies = [line for line in request.body.split(b"\n") if line]
        if any(len(body) > options.max_msg_size for body in bodies):
            raise HTTPError(413, "MSG_TOO_BIG")
    return _put(nsqd, topic, bodies, 0.0)


def binary_mpub_bodies(body: bytes, max_msg_size: int, max_body_size: int) -> list[bytes]:
    """The messages of a binary /mpub body (layout below), or 413 BAD_BODY / BAD_MESSAGE.

    ``[count: int32][size: int32][message]...`` (big-endian); bytes after the last message are
    ignored, as NSQ reads the parts from the stream.
    """
    if len(body) < 4:
        raise HTTPError(413, "BAD_BODY")
    (count,) = _INT32.unpack_from(body)
    if count <= 0 or count > (max_body_size - 4) // 5:
        raise HTTPError(413, "BAD_BODY")
    bodies, pos = [], 4
    for _ in range(count):
        if len(body) < pos + 4:
            raise HTTPError(413, "BAD_MESSAGE")
        (size,) = _INT32.unpack_from(body, pos)
        end = pos + 4 + size
        if size <= 0 or size > max_msg_size or end > len(body):
            raise HTTPError(413, "BAD_MESSAGE")
        bodies.append(body[pos + 4 : end])
        pos = end
    return bodies


# -- topics and channels ------------------------------------------------------------------------


def _existing_topic(nsqd: NSQD, name: str | None, *, validate: bool = False) -> Topic:
    if name is None:
        raise HTTPError(400, "MISSING_ARG_TOPIC")
    if validate and not is_valid_name(name):
        raise HTTPError(400, "INVALID_TOPIC")
    topic = nsqd.topics.get(name)
    if topic is None:
        raise HTTPError(404, "TOPIC_NOT_FOUND")
    return topic


def _create_topic(nsqd: NSQD, request: Request) -> Response:
    _publish_topic(nsqd, request.params())
    return _EMPTY


def _delete_topic(nsqd: NSQD, request: Request) -> Response:
    topic = _existing_topic(nsqd, _first(request.params(), "topic"))
    nsqd.delete_topic(topic.name)
    return _EMPTY


def _empty_topic(nsqd: NSQD, request: Request) -> Response:
    _existing_topic(nsqd, _first(request.params(), "topic"), validate=True).empty()
    return _EMPTY


def _pause_topic(nsqd: NSQD, request: Request) -> Response:
    topic = _existing_topic(nsqd, _first(request.params(), "topic"))
    if request.path.endswith("unpause"):
        topic.unpause(trio.current_time())
    else:
        topic.pause()
    return _EMPTY


def _topic_and_channel(nsqd: NSQD, request: Request) -> tuple[Topic, str]:
    """NSQ's GetTopicChannelArgs then an existing topic: /channel/* errors (B.6)."""
    params = request.params()
    topic_name, channel_name = _first(params, "topic"), _first(params, "channel")
    if topic_name is None:
        raise HTTPError(400, "MISSING_ARG_TOPIC")
    if not is_valid_name(topic_name):
        raise HTTPError(400, "INVALID_ARG_TOPIC")
    if channel_name is None:
        raise HTTPError(400, "MISSING_ARG_CHANNEL")
    if not is_valid_name(channel_name):
        raise HTTPError(400, "INVALID_ARG_CHANNEL")
    return _existing_topic(nsqd, topic_name), channel_name


def _create_channel(nsqd: NSQD, request: Request) -> Response:
    topic, name = _topic_and_channel(nsqd, request)
    topic.get_channel(name, trio.current_time())
    return _EMPTY


def _channel_action(nsqd: NSQD, request: Request) -> Response:
    """/channel/delete, /channel/empty, /channel/pause and /channel/unpause."""
    topic, name = _topic_and_channel(nsqd, request)
    channel = topic.channels.get(name)
    if channel is None:
        raise HTTPError(404, "CHANNEL_NOT_FOUND")
    action = request.path.rpartition("/")[2]
    if action == "delete":
        topic.delete_channel(name)
    elif action == "empty":
        channel.empty()
    elif action == "pause":
        channel.pause()
    else:
        channel.unpause(trio.current_time())
    return _EMPTY


PEEK_DEFAULT = 10
PEEK_MAX = 100
PEEK_BODY_PREVIEW = 1024


def _peek_channel(nsqd: NSQD, request: Request) -> Response:
    """GET /channel/peek: the next ``n`` waiting messages, left where they are (pnsq's own)."""
    topic, name = _topic_and_channel(nsqd, request)
    channel = topic.channels.get(name)
    if channel is None:
        raise HTTPError(404, "CHANNEL_NOT_FOUND")
    text = _first(request.params(), "n")
    if text is None:
        n = PEEK_DEFAULT
    elif text.isascii() and text.isdigit() and 0 < int(text) <= PEEK_MAX:
        n = int(text)
    else:
        raise HTTPError(400, "INVALID_ARG_N")
    messages = [
        {
            "id": msg.id.decode("latin-1"),
            "timestamp": msg.timestamp,
            "attempts": msg.attempts,
            "body": msg.body[:PEEK_BODY_PREVIEW].decode("utf-8", "replace"),
            "body_size": len(msg.body),
        }
        for msg in channel.peek(n)
    ]
    return _json({"messages": messages})


# -- information --------------------------------------------------------------------------------


def _ping(nsqd: NSQD, request: Request) -> Response:
    health = nsqd.health
    return _text(health, 200 if health == "OK" else 500)


def _info(nsqd: NSQD, request: Request) -> Response:
    options = nsqd.options
    return _json(
        {
            "version": NSQ_VERSION,
            "broadcast_address": options.broadcast_address,
            "hostname": socket.gethostname(),
            "http_port": nsqd.http_address[1] if nsqd.http_address else -1,
            "tcp_port": nsqd.tcp_address[1] if nsqd.tcp_address else -1,
            "start_time": nsqd.start_time,
            "max_heartbeat_interval": _ns(options.max_heartbeat_interval),
            "max_output_buffer_size": options.max_output_buffer_size,
            "max_output_buffer_timeout": _ns(options.max_output_buffer_timeout),
            "max_deflate_level": options.max_deflate_level,
            "topology_zone": options.topology_zone,
            "topology_region": options.topology_region,
        }
    )


def _stats(nsqd: NSQD, request: Request) -> Response:
    params = request.params()
    document = stats_document(
        nsqd,
        topic=_first(params, "topic") or "",
        channel=_first(params, "channel") or "",
        include_clients=_BOOL_PARAMS.get(_first(params, "include_clients") or "", True),
        include_mem=_BOOL_PARAMS.get(_first(params, "include_mem") or "", True),
    )
    if _first(params, "format") == "json":
        return _json(document)
    return _text(stats_text(document, time.time()))


def _free_memory(nsqd: NSQD, request: Request) -> Response:
    gc.collect()
    return _EMPTY


# -- /config/:opt -------------------------------------------------------------------------------


def _ns(seconds: float) -> int:
    return round(seconds * 1e9)


# Options by config-file name: the field name, but node_id is "id"; the options that are not
# flags in NSQ have no config-file name.
_NOT_FLAGS = {
    "node_id",
    "client_timeout",
    "queue_scan_interval",
    "queue_scan_refresh_interval",
    "queue_scan_dirty_percent",
}
_CONFIG_FIELDS = {f.name: f.name for f in dataclasses.fields(Options) if f.name not in _NOT_FLAGS}
_CONFIG_FIELDS["id"] = "node_id"
# Go types of options that pnsq keeps as strings: NSQ answers their numbers.
_GO_LOG_LEVELS = {"debug": 1, "info": 2, "warn": 3, "error": 4, "fatal": 5}
_GO_TLS_REQUIRED = {"false": 0, "tcp-https": 1, "true": 2}
_GO_TLS_VERSIONS = {"tls1.0": 0x0301, "tls1.1": 0x0302, "tls1.2": 0x0303, "tls1.3": 0x0304}
_GO_ENUMS = {
    "log_level": _GO_LOG_LEVELS,
    "tls_required": _GO_TLS_REQUIRED,
    "tls_min_version": _GO_TLS_VERSIONS,
}


def config_value(options: Options, name: str) -> Response:
    """An option by its config-file name, as NSQ answers it; 400 INVALID_OPTION if unknown.

    Durations are nanosecond integers, empty lists null, log_level / tls_required /
    tls_min_version NSQ's numbers; a string answers as plain text, as NSQ's RespondV1 does.
    """
    field = _CONFIG_FIELDS.get(name)
    if field is None:
        raise HTTPError(400, "INVALID_OPTION")
    value = getattr(options, field)
    if field in _GO_ENUMS:
        return _json(_GO_ENUMS[field].get(value, 0))
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, float):
        return _json(_ns(value))
    if isinstance(value, tuple):
        return _json(list(value) or None)
    return _json(value)


def _get_config(nsqd: NSQD, request: Request) -> Response:
    return config_value(nsqd.options, request.path_param)


def _put_config(nsqd: NSQD, request: Request) -> Response:
    if not request.body:
        raise HTTPError(413, "INVALID_VALUE")
    name = request.path_param
    if name == "nsqlookupd_tcp_addresses":
        options = dataclasses.replace(nsqd.options, nsqlookupd_tcp_addresses=_addresses(request))
    elif name == "log_level":
        level = _log_level(request.body)
        options = dataclasses.replace(nsqd.options, log_level=level)
        logging.getLogger().setLevel(LOG_LEVELS[level])
    else:
        raise HTTPError(400, "INVALID_OPTION")
    nsqd.options = options
    log.info("HTTP: option %s set to %r", name, getattr(options, name))
    return config_value(options, name)


def _addresses(request: Request) -> tuple[str, ...]:
    try:
        value = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise HTTPError(400, "INVALID_VALUE") from None
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise HTTPError(400, "INVALID_VALUE")
    return tuple(value)


def _log_level(body: bytes) -> str:
    text = body.decode("utf-8", "replace")
    if text.startswith('"'):
        try:
            text = json.loads(text)
        except ValueError:
            raise HTTPError(400, "INVALID_VALUE") from None
    try:
        return parse_log_level(str(text))
    except ValueError:
        raise HTTPError(400, "INVALID_VALUE") from None


# -- routing ------------------------------------------------------------------------------------

Handler = Callable[["NSQD", Request], Response]


def _max_msg_size(options: Options) -> int:
    return options.max_msg_size


def _max_body_size(options: Options) -> int:
    return options.max_body_size


@dataclass(frozen=True, slots=True)
class Route:
    handler: Handler
    body_limit: Callable[[Options], int] = _max_body_size
    too_big: str = "BODY_TOO_BIG"  # the 413 code for a body over the limit
    handler_checks_size: bool = False  # the handler reports a truncated body itself
    logged: bool = True  # NSQ logs every request but publishes


_ROUTES: dict[str, dict[str, Route]] = {
    "/ping": {"GET": Route(_ping)},
    "/info": {"GET": Route(_info)},
    "/pub": {"POST": Route(_pub, _max_msg_size, "MSG_TOO_BIG", logged=False)},
    "/mpub": {"POST": Route(_mpub, handler_checks_size=True, logged=False)},
    "/stats": {"GET": Route(_stats)},
    "/topic/create": {"POST": Route(_create_topic)},
    "/topic/delete": {"POST": Route(_delete_topic)},
    "/topic/empty": {"POST": Route(_empty_topic)},
    "/topic/pause": {"POST": Route(_pause_topic)},
    "/topic/unpause": {"POST": Route(_pause_topic)},
    "/channel/create": {"POST": Route(_create_channel)},
    "/channel/delete": {"POST": Route(_channel_action)},
    "/channel/empty": {"POST": Route(_channel_action)},
    "/channel/pause": {"POST": Route(_channel_action)},
    "/channel/unpause": {"POST": Route(_channel_action)},
    "/channel/peek": {"GET": Route(_peek_channel)},
    "/config/:opt": {
        "GET": Route(_get_config),
        "PUT": Route(_put_config, _max_msg_size, "INVALID_VALUE"),
    },
    "/debug/freememory": {"POST": Route(_free_memory)},
}


def _find_route(path: str) -> tuple[dict[str, Route] | None, str]:
    """The routes of ``path`` by method, and the ``:opt`` of /config/:opt."""
    methods = _ROUTES.get(path)
    if methods is None and path.startswith("/config/"):
        opt = path[len("/config/") :]
        if opt and "/" not in opt:
            return _ROUTES["/config/:opt"], opt
    return methods, ""


def _allow(methods: dict[str, Route]) -> tuple[bytes, bytes]:
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


class HTTPConnection:
    """Serves the requests of one client until it closes, falls silent, or must be closed."""

    def __init__(self, nsqd: NSQD, stream: trio.SocketStream, remote: str) -> None:
        self.nsqd = nsqd
        self.stream = stream
        self.remote = remote
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
            self.idle.deadline = trio.current_time() + IDLE_TIMEOUT
            conn.receive_data(await self.stream.receive_some(RECEIVE_SIZE))

    async def _flush(self) -> None:
        if self.out:
            data, self.out = self.out, bytearray()
            self.idle.deadline = trio.current_time() + IDLE_TIMEOUT
            await self.stream.send_all(data)

    async def _answer(self, event: h11.Request) -> bool:
        """Read the body, answer; False when the connection must close afterwards."""
        method = event.method.decode("ascii")
        path, query = _split_target(event.target)
        methods, param = _find_route(path)
        route = methods.get(method) if methods else None
        limit = route.body_limit(self.nsqd.options) if route else self.nsqd.options.max_body_size
        too_big = route.too_big if route else "BODY_TOO_BIG"
        if _content_length(event) > limit:
            self._respond(method, _error(413, too_big), close=True)
            return False
        body, truncated = await self._read_body(limit)
        request = Request(method, path, query, body, truncated, param)
        if methods is None:
            response = _error(404, "NOT_FOUND")
        elif route is None and method == "OPTIONS":
            response = Response(200, headers=(_allow(methods),))
        elif route is None:
            response = _error(405, "METHOD_NOT_ALLOWED", _allow(methods))
        elif truncated and not route.handler_checks_size:
            response = _error(413, too_big)
        else:
            response, crashed = self._call(route, request)
            truncated = truncated or crashed
        close = truncated
        if route is None or route.logged:
            log.info("%d %s %s (%s)", response.status, method, event.target.decode(), self.remote)
        self._respond(method, response, close=close)
        return not close

    def _call(self, route: Route, request: Request) -> tuple[Response, bool]:
        """The handler's answer, and whether it crashed (the connection then closes)."""
        try:
            return route.handler(self.nsqd, request), False
        except HTTPError as err:
            return _error(err.status, err.message), False
        except Exception:
            log.exception("HTTP: internal error in %s %s", request.method, request.path)
            return _error(500, "INTERNAL_ERROR"), True

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
        log.info("HTTP: bad request from %s - %s", self.remote, exc)
        status = exc.error_status_hint
        message = "REQUEST_HEADER_FIELDS_TOO_LARGE" if status == 431 else "BAD_REQUEST"
        self._respond("", _error(status, message), close=True)


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


async def handle_http_connection(nsqd: NSQD, stream: trio.SocketStream) -> None:
    """Serve one HTTP client until it goes away; never raises."""
    try:
        host, port = stream.socket.getpeername()[:2]
    except OSError:
        return
    remote = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    await serve_connection(stream, HTTPConnection(nsqd, stream, remote).run, log, f"HTTP {remote}")
