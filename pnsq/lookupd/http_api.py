"""nsqlookupd's HTTP API (reference §5.3), on the server nsqd uses too.

Lists come out sorted (NSQ's come in Go's map order, which no client may rely on) and empty
lists as ``[]``, as NSQ's lookupd writes them. /lookup answers 404 ``TOPIC_NOT_FOUND`` only for
a topic name never seen (B.9) and hides producers that are inactive or tombstoned for the
topic; /nodes hides only inactive ones, and says per topic whether the node is tombstoned.

The handlers see the daemon only as ``Registry`` (its registrations, options and clock), so
this module sits below ``lookupd``, which serves it.

/metrics (pnsq's) is Prometheus' view of the same registrations (``metrics``).

/debug dumps the registrations in NSQ's shape: ``category:key:subkey`` to the producers
registered there, so NSQ's tooling reads it; registrations without producers are left out,
as NSQ leaves them out.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Protocol

import trio

from .. import NSQ_VERSION
from .._internal import http_server
from .._internal.http_server import (
    EMPTY,
    OK,
    HTTPError,
    Request,
    Response,
    first,
    json_response,
)
from ..wire.names import is_valid_name
from .options import LookupdOptions
from .registration_db import PEER_FIELDS, Peer, Producer, RegistrationDB

if TYPE_CHECKING:
    from .._internal.prometheus import Exposition


class Registry(Protocol):
    """What the HTTP handlers need of the daemon (``Lookupd``)."""

    @property
    def db(self) -> RegistrationDB: ...

    @property
    def options(self) -> LookupdOptions: ...

    exposition: Exposition | None  # GET /metrics' registry, made by the first scrape

    def now(self) -> float: ...


if TYPE_CHECKING:
    Route = http_server.Route[Registry]
else:
    Route = http_server.Route

log = logging.getLogger("pnsq.lookupd")

MAX_BODY = 1024 * 1024  # no lookupd route reads a body; refuse big ones early


def _peer_json(peer: Peer) -> dict[str, Any]:
    info = peer.info
    return {key: info[key] for key in PEER_FIELDS}


def _topic_param(params: dict[str, list[str]]) -> str:
    name = first(params, "topic")
    if name is None:
        raise HTTPError(400, "MISSING_ARG_TOPIC")
    return name


def _topic_channel_params(request: Request) -> tuple[str, str]:
    """NSQ's GetTopicChannelArgs."""
    params = request.params()
    topic = _topic_param(params)
    if not is_valid_name(topic):
        raise HTTPError(400, "INVALID_ARG_TOPIC")
    channel = first(params, "channel")
    if channel is None:
        raise HTTPError(400, "MISSING_ARG_CHANNEL")
    if not is_valid_name(channel):
        raise HTTPError(400, "INVALID_ARG_CHANNEL")
    return topic, channel


def _ping(lookupd: Registry, request: Request) -> Response:
    return OK


def _info(lookupd: Registry, request: Request) -> Response:
    return json_response({"version": NSQ_VERSION})


def _lookup(lookupd: Registry, request: Request) -> Response:
    topic = _topic_param(request.params())
    db, options = lookupd.db, lookupd.options
    if topic not in db.topics:
        raise HTTPError(404, "TOPIC_NOT_FOUND")
    producers = db.active_producers(
        topic, lookupd.now(), options.inactive_producer_timeout, options.tombstone_lifetime
    )
    return json_response(
        {
            "channels": sorted(db.channel_names(topic)),
            "producers": [_peer_json(peer) for peer in producers],
        }
    )


def _topics(lookupd: Registry, request: Request) -> Response:
    return json_response({"topics": sorted(lookupd.db.topics)})


def _channels(lookupd: Registry, request: Request) -> Response:
    topic = _topic_param(request.params())
    return json_response({"channels": sorted(lookupd.db.channel_names(topic))})


def _nodes(lookupd: Registry, request: Request) -> Response:
    options = lookupd.options
    nodes = lookupd.db.nodes(
        lookupd.now(), options.inactive_producer_timeout, options.tombstone_lifetime
    )
    producers = []
    for peer, topics, tombstones in nodes:
        pairs = sorted(zip(topics, tombstones, strict=True))
        producers.append(
            {
                **_peer_json(peer),
                "tombstones": [tombstoned for _, tombstoned in pairs],
                "topics": [topic for topic, _ in pairs],
            }
        )
    return json_response({"producers": producers})


def _create_topic(lookupd: Registry, request: Request) -> Response:
    topic = _topic_param(request.params())
    if not is_valid_name(topic):
        raise HTTPError(400, "INVALID_ARG_TOPIC")
    log.info("DB: adding topic(%s)", topic)
    lookupd.db.create_topic(topic)
    return EMPTY


def _delete_topic(lookupd: Registry, request: Request) -> Response:
    topic = _topic_param(request.params())
    log.info("DB: removing topic(%s)", topic)
    lookupd.db.delete_topic(topic)
    return EMPTY


def _tombstone_topic_producer(lookupd: Registry, request: Request) -> Response:
    params = request.params()
    topic = _topic_param(params)
    node = first(params, "node")
    if node is None:
        raise HTTPError(400, "MISSING_ARG_NODE")
    log.info("DB: setting tombstone for producer@%s of topic(%s)", node, topic)
    lookupd.db.tombstone(topic, node, lookupd.now())
    return EMPTY


def _create_channel(lookupd: Registry, request: Request) -> Response:
    topic, channel = _topic_channel_params(request)
    log.info("DB: adding channel(%s) in topic(%s)", channel, topic)
    lookupd.db.create_channel(topic, channel)
    return EMPTY


def _delete_channel(lookupd: Registry, request: Request) -> Response:
    topic, channel = _topic_channel_params(request)
    if not lookupd.db.delete_channel(topic, channel):
        raise HTTPError(404, "CHANNEL_NOT_FOUND")
    log.info("DB: removed channel(%s) in topic(%s)", channel, topic)
    return EMPTY


# Go's zero time.Time in UnixNano: what NSQ prints as the tombstoned_at of a live producer.
_GO_ZERO_TIME_NS = -6795364578871345152


def _debug(lookupd: Registry, request: Request) -> Response:
    """NSQ's doDebug: every registration with its producers, times in Unix nanoseconds."""
    db = lookupd.db
    # Peer times are on the daemon's (trio's) clock; NSQ's are wall-clock nanoseconds.
    wall_offset = time.time() - lookupd.now()

    def unix_ns(at: float) -> int:
        return int((at + wall_offset) * 1e9)

    def producer_json(producer: Producer) -> dict[str, Any]:
        peer, info, at = producer.peer, producer.peer.info, producer.tombstoned_at
        return {
            "id": peer.id,
            "hostname": info["hostname"],
            "broadcast_address": info["broadcast_address"],
            "tcp_port": info["tcp_port"],
            "http_port": info["http_port"],
            "version": info["version"],
            "last_update": unix_ns(peer.last_update),
            "tombstoned": at is not None,
            "tombstoned_at": _GO_ZERO_TIME_NS if at is None else unix_ns(at),
        }

    data: dict[str, list[dict[str, Any]]] = {}
    if db.peers:
        data["client::"] = [producer_json(Producer(peer)) for peer in db.peers.values()]
    for topic, producers in sorted(db.topics.items()):
        if producers:
            data[f"topic:{topic}:"] = [producer_json(p) for p in producers.values()]
    for topic, channels in sorted(db.channels.items()):
        for channel, producers in sorted(channels.items()):
            if producers:
                data[f"channel:{topic}:{channel}"] = [producer_json(p) for p in producers.values()]
    return json_response(data)


def _metrics(lookupd: Registry, request: Request) -> Response:
    """Prometheus' text format, or OpenMetrics when Accept asks for it (pnsq's own);
    prometheus_client is loaded by the first scrape, as nsqd's (``pnsq.nsqd.http_api``)."""
    if lookupd.exposition is None:
        from .metrics import exposition  # the first scrape

        lookupd.exposition = exposition(lookupd)
    return lookupd.exposition.response(request.header(b"accept"))


def _max_body(lookupd: Registry) -> int:
    return MAX_BODY


_ROUTES: dict[str, dict[str, Route]] = {
    "/ping": {"GET": Route(_ping, logged=False)},
    "/info": {"GET": Route(_info)},
    "/lookup": {"GET": Route(_lookup)},
    "/topics": {"GET": Route(_topics)},
    "/channels": {"GET": Route(_channels)},
    "/nodes": {"GET": Route(_nodes)},
    "/topic/create": {"POST": Route(_create_topic)},
    "/topic/delete": {"POST": Route(_delete_topic)},
    "/channel/create": {"POST": Route(_create_channel)},
    "/channel/delete": {"POST": Route(_delete_channel)},
    "/topic/tombstone": {"POST": Route(_tombstone_topic_producer)},
    "/debug": {"GET": Route(_debug)},
    "/metrics": {"GET": Route(_metrics)},
}
_ROUTER = http_server.Router(_ROUTES, _max_body, log)


async def handle_http_connection(lookupd: Registry, stream: trio.SocketStream) -> None:
    """Serve one HTTP client until it goes away; never raises."""
    await http_server.serve_http_connection(lookupd, _ROUTER, stream)
