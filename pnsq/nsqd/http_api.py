"""nsqd's HTTP API (reference §3): publishing, administration, /stats and /config, and pnsq's
Prometheus /metrics (the collector is ``metrics``'s).

The server itself is ``pnsq._internal.http_server`` (shared with nsqlookupd); this module holds
nsqd's routes and handlers, plain functions ``(nsqd, request) -> Response``. Errors are checked
in NSQ's order (which error a client sees depends on it, B.5-B.7).

Choices NSQ leaves open: a publish refused because the disk fails answers 503
``DISK_ERROR`` (NSQ only ever says 503 ``EXITING``; clients look at the status alone), one
refused while nsqd or the topic drains 503 ``DRAINING`` (``drain.py``), and
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
import time
from typing import TYPE_CHECKING

import trio

from .. import NSQ_VERSION
from .._internal import http_server
from .._internal.http_accept import serve_http_listeners
from .._internal.http_server import (
    EMPTY,
    OK,
    HTTPError,
    Request,
    Response,
    error,
    first,
    json_response,
    text,
)
from .._internal.logging import LOG_LEVELS, parse_log_level
from ..wire.errors import ProtocolError
from ..wire.mpub import decode_mpub_body
from ..wire.names import is_valid_name
from . import debug
from .options import Options
from .stats import stats_document, stats_text
from .topic import PutError

if TYPE_CHECKING:
    from .broker import Broker
    from .disk import Round
    from .topic import Topic

log = logging.getLogger("pnsq.nsqd")

IDLE_TIMEOUT = 60.0  # a connection silent (or not reading) for this long is closed

# -- publishing -------------------------------------------------------------------------------


def _publish_topic(nsqd: Broker, params: dict[str, list[str]]) -> Topic:
    """The ``topic`` parameter's topic, created if new (NSQ's getTopicFromQuery)."""
    name = first(params, "topic")
    if name is None:
        raise HTTPError(400, "MISSING_ARG_TOPIC")
    if not is_valid_name(name):
        raise HTTPError(400, "INVALID_TOPIC")
    try:
        return nsqd.get_topic(name)
    except PutError:  # draining: no new topics
        raise HTTPError(503, "DRAINING") from None


def _put(nsqd: Broker, topic: Topic, bodies: list[bytes], delay: float) -> Response:
    try:
        topic.put(bodies, trio.current_time(), time.time_ns(), delay)
    except PutError as err:
        if nsqd.exiting or topic.exiting:
            raise HTTPError(503, "EXITING") from None
        if nsqd.draining or topic.draining:
            raise HTTPError(503, "DRAINING") from None
        log.warning("HTTP: publish to %s refused - %s", topic.name, err)
        raise HTTPError(503, "DISK_ERROR") from None
    if nsqd.disk.durable and not topic.ephemeral:
        return Response(200, pending=_confirm(nsqd.disk.ticket()))
    return OK


async def _confirm(commit: Round) -> Response:
    """Durable mode: OK once the disk round carrying the publish is fsynced."""
    await commit.done.wait()
    return OK if commit.ok else error(503, "DISK_ERROR")


_GO_INT = re.compile(r"[+-]?[0-9]+")


def _defer(params: dict[str, list[str]], options: Options) -> float:
    """``defer`` in ms, 0..max-req-timeout, as seconds; 400 INVALID_DEFER otherwise."""
    text = first(params, "defer")
    if text is None:
        return 0.0
    valid = len(text) < 4000 and _GO_INT.fullmatch(text)  # int() refuses much longer
    if not valid or not 0 <= int(text) <= options.max_req_timeout * 1000:
        raise HTTPError(400, "INVALID_DEFER")
    return int(text) / 1000


def _pub(nsqd: Broker, request: Request) -> Response:
    # The body is checked before the topic (B.5); its size was checked while reading it.
    if not request.body:
        raise HTTPError(400, "MSG_EMPTY")
    params = request.params()
    topic = _publish_topic(nsqd, params)
    delay = _defer(params, nsqd.options)
    return _put(nsqd, topic, [request.body], delay)


_BOOL_PARAMS = {"true": True, "1": True, "false": False, "0": False}


def _mpub(nsqd: Broker, request: Request) -> Response:
    params = request.params()
    topic = _publish_topic(nsqd, params)  # created even if the body is then refused (B.7)
    binary = first(params, "binary")
    if request.truncated:
        raise HTTPError(413, "BODY_TOO_BIG")
    options = nsqd.options
    if binary is not None and _BOOL_PARAMS.get(binary, True):
        if binary not in _BOOL_PARAMS:
            log.warning("deprecated value '%s' used for /mpub binary param", binary)
        bodies = binary_mpub_bodies(request.body, options.max_msg_size, options.max_body_size)
    else:
        bodies = request.body.split(b"\n")
        if b"" in bodies:  # empty lines are skipped (a trailing newline makes one)
            bodies = [line for line in bodies if line]
        if bodies and max(map(len, bodies)) > options.max_msg_size:
            raise HTTPError(413, "MSG_TOO_BIG")
    return _put(nsqd, topic, bodies, 0.0)


def binary_mpub_bodies(body: bytes, max_msg_size: int, max_body_size: int) -> list[bytes]:
    """The messages of a binary /mpub body, or 413 with NSQ's code minus ``E_`` (BAD_BODY,
    BAD_MESSAGE), as nsqd answers the TCP MPUB's errors over HTTP."""
    try:
        return decode_mpub_body(body, max_msg_size, max_body_size)
    except ProtocolError as exc:
        raise HTTPError(413, exc.code.removeprefix("E_")) from None


# -- topics and channels ------------------------------------------------------------------------


def _existing_topic(nsqd: Broker, name: str | None, *, validate: bool = False) -> Topic:
    if name is None:
        raise HTTPError(400, "MISSING_ARG_TOPIC")
    if validate and not is_valid_name(name):
        raise HTTPError(400, "INVALID_TOPIC")
    topic = nsqd.topics.get(name) or nsqd.hatching.get(name)  # hatching: acts on it anyway
    if topic is None:
        raise HTTPError(404, "TOPIC_NOT_FOUND")
    return topic


def _create_topic(nsqd: Broker, request: Request) -> Response:
    _publish_topic(nsqd, request.params())
    return EMPTY


def _delete_topic(nsqd: Broker, request: Request) -> Response:
    topic = _existing_topic(nsqd, first(request.params(), "topic"))
    nsqd.delete_topic(topic.name)
    return EMPTY


def _empty_topic(nsqd: Broker, request: Request) -> Response:
    _existing_topic(nsqd, first(request.params(), "topic"), validate=True).empty()
    return EMPTY


def _pause_topic(nsqd: Broker, request: Request) -> Response:
    topic = _existing_topic(nsqd, first(request.params(), "topic"))
    if request.path.endswith("unpause"):
        topic.unpause(trio.current_time())
    else:
        topic.pause()
    return EMPTY


def _topic_and_channel(nsqd: Broker, request: Request) -> tuple[Topic, str]:
    """NSQ's GetTopicChannelArgs then an existing topic: /channel/* errors (B.6)."""
    params = request.params()
    topic_name, channel_name = first(params, "topic"), first(params, "channel")
    if topic_name is None:
        raise HTTPError(400, "MISSING_ARG_TOPIC")
    if not is_valid_name(topic_name):
        raise HTTPError(400, "INVALID_ARG_TOPIC")
    if channel_name is None:
        raise HTTPError(400, "MISSING_ARG_CHANNEL")
    if not is_valid_name(channel_name):
        raise HTTPError(400, "INVALID_ARG_CHANNEL")
    return _existing_topic(nsqd, topic_name), channel_name


def _create_channel(nsqd: Broker, request: Request) -> Response:
    topic, name = _topic_and_channel(nsqd, request)
    if nsqd.draining:
        raise HTTPError(503, "DRAINING")
    topic.get_channel(name, trio.current_time())
    return EMPTY


def _channel_action(nsqd: Broker, request: Request) -> Response:
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
    return EMPTY


PEEK_DEFAULT = 10
PEEK_MAX = 100
PEEK_BODY_PREVIEW = 1024


def _peek_channel(nsqd: Broker, request: Request) -> Response:
    """GET /channel/peek: the next ``n`` waiting messages, left where they are (pnsq's own)."""
    topic, name = _topic_and_channel(nsqd, request)
    channel = topic.channels.get(name)
    if channel is None:
        raise HTTPError(404, "CHANNEL_NOT_FOUND")
    value = first(request.params(), "n")
    if value is None:
        n = PEEK_DEFAULT
    elif value.isascii() and value.isdigit() and 0 < int(value) <= PEEK_MAX:
        n = int(value)
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
    return json_response({"messages": messages})


# -- information --------------------------------------------------------------------------------


def _ping(nsqd: Broker, request: Request) -> Response:
    """OK; 500 when the disk fails; 503 while draining, so load balancers stop sending."""
    health = nsqd.health
    if health == "OK" and nsqd.draining:
        return text("NOK - draining", 503)
    return text(health, 200 if health == "OK" else 500)


def _info(nsqd: Broker, request: Request) -> Response:
    options = nsqd.options
    return json_response(
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
            "state": nsqd.state,  # pnsq's: running, draining or exiting
        }
    )


def _stats(nsqd: Broker, request: Request) -> Response:
    params = request.params()
    document = stats_document(
        nsqd,
        topic=first(params, "topic") or "",
        channel=first(params, "channel") or "",
        include_clients=_BOOL_PARAMS.get(first(params, "include_clients") or "", True),
        include_mem=_BOOL_PARAMS.get(first(params, "include_mem") or "", True),
    )
    if first(params, "format") == "json":
        return json_response(document)
    return text(stats_text(document, time.time()))


def _metrics(nsqd: Broker, request: Request) -> Response:
    """Prometheus' text format, or OpenMetrics when Accept asks for it (pnsq's own).

    prometheus_client is loaded by the first scrape, not with nsqd: it adds ~6 MiB to the RSS
    of an nsqd nobody scrapes (and its exposition module loads python-snappy when installed).
    """
    from .metrics import exposition  # the first scrape loads it: see above
    from .scrape import scrape

    if nsqd.exposition is None:
        nsqd.exposition = exposition(nsqd)
    return Response(200, pending=scrape(nsqd, request.header(b"accept")))


# -- drain (NSQ PR #1305) ------------------------------------------------------------------------


def _drain_topic(nsqd: Broker, request: Request) -> Response:
    topic = _existing_topic(nsqd, first(request.params(), "topic"), validate=True)
    nsqd.drain.drain_topic(topic)
    return EMPTY


def _set_state(nsqd: Broker, request: Request) -> Response:
    """PUT /state/drain starts a drain (again: no-op); PUT /state/shutdown shuts down."""
    if request.path.endswith("drain"):
        nsqd.drain.start()
    else:
        log.info("HTTP: shutdown requested")
        nsqd.stop()
    return EMPTY


def _free_memory(nsqd: Broker, request: Request) -> Response:
    gc.collect()
    return EMPTY


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
        return json_response(_GO_ENUMS[field].get(value, 0))
    if isinstance(value, str):
        return text(value)
    if isinstance(value, float):
        return json_response(_ns(value))
    if isinstance(value, tuple):
        return json_response(list(value) or None)
    return json_response(value)


def _get_config(nsqd: Broker, request: Request) -> Response:
    return config_value(nsqd.options, request.path_param)


def _put_config(nsqd: Broker, request: Request) -> Response:
    if not request.body:
        raise HTTPError(413, "INVALID_VALUE")
    name = request.path_param
    if name == "nsqlookupd_tcp_addresses":
        options = dataclasses.replace(nsqd.options, nsqlookupd_tcp_addresses=_addresses(request))
        nsqd.lookup.set_addresses(options.nsqlookupd_tcp_addresses)
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


def _max_msg_size(nsqd: Broker) -> int:
    return nsqd.options.max_msg_size


def _max_body_size(nsqd: Broker) -> int:
    return nsqd.options.max_body_size


if TYPE_CHECKING:
    Route = http_server.Route[Broker]
else:  # calling a subscripted generic would set __orig_class__ on a frozen instance
    Route = http_server.Route

_ROUTES: dict[str, dict[str, Route]] = {
    "/ping": {"GET": Route(_ping)},
    "/info": {"GET": Route(_info)},
    "/pub": {"POST": Route(_pub, _max_msg_size, "MSG_TOO_BIG", logged=False)},
    "/mpub": {"POST": Route(_mpub, handler_checks_size=True, logged=False)},
    "/stats": {"GET": Route(_stats)},
    "/metrics": {"GET": Route(_metrics)},
    "/topic/create": {"POST": Route(_create_topic)},
    "/topic/delete": {"POST": Route(_delete_topic)},
    "/topic/empty": {"POST": Route(_empty_topic)},
    "/topic/pause": {"POST": Route(_pause_topic)},
    "/topic/unpause": {"POST": Route(_pause_topic)},
    "/topic/drain": {"POST": Route(_drain_topic)},
    "/state/drain": {"PUT": Route(_set_state)},
    "/state/shutdown": {"PUT": Route(_set_state)},
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
    "/debug/pprof": {"GET": Route(debug.index)},
    "/debug/tasks": {"GET": Route(debug.tasks)},
    "/debug/gc": {"GET": Route(debug.gc_page)},
}


_ROUTER = http_server.Router(_ROUTES, _max_body_size, log)


async def serve_http(
    nsqd: Broker, listeners: list[trio.SocketListener], handler_nursery: trio.Nursery
) -> None:
    """Accept HTTP clients until cancelled; each is served in ``handler_nursery``."""
    await serve_http_listeners(nsqd, _connection_settings, listeners, handler_nursery)


def _connection_settings(nsqd: Broker) -> tuple[http_server.Router[Broker], float]:
    return _TLS_REQUIRED_ROUTER if nsqd.tls_required == "true" else _ROUTER, IDLE_TIMEOUT


async def handle_https_connection(nsqd: Broker, stream: trio.SocketStream) -> None:
    """Serve one HTTPS client (the whole API, over TLS) until it goes away; never raises."""
    await http_server.serve_http_connection(nsqd, _ROUTER, stream, IDLE_TIMEOUT, nsqd.tls_context)


# --tls-required=true (not tcp-https): plain HTTP answers every request 403, with the port to
# retry on; NSQ's text has a space after each colon, so it is written out, not encoded.
def _tls_required(nsqd: Broker, request: Request) -> Response:
    port = nsqd.https_address[1] if nsqd.https_address else 0
    body = f'{{"message": "TLS_REQUIRED", "https_port": {port}}}'.encode()
    return Response(403, body, b"application/json; charset=utf-8", _NSQ_CONTENT_TYPE)


_NSQ_CONTENT_TYPE = ((b"X-NSQ-Content-Type", b"nsq; version=1.0"),)


class _EveryPath(http_server.Router["Broker"]):
    def find(self, path: str) -> tuple[dict[str, Route] | None, str]:
        return _EVERY_METHOD, ""


class _AnyMethod(dict[str, Route]):
    """Every method, any token Go reads (``BREW``) included: NSQ answers before routing."""

    def get(self, method: str, default: object = None) -> Route:
        return _TLS_REQUIRED_ROUTE


_TLS_REQUIRED_ROUTE = Route(_tls_required)
_EVERY_METHOD = _AnyMethod.fromkeys(
    ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"), _TLS_REQUIRED_ROUTE
)
_TLS_REQUIRED_ROUTER = _EveryPath({}, _max_body_size, log)
