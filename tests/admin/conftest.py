"""Fixtures for the admin tests: the admin itself, and a fake lookupd in front of real nsqds.

- ``make_admin(**option_overrides)`` starts an ``AdminServer`` on 127.0.0.1:0 in the test's
  nursery and returns it (``server.http_address``, ``server.admin`` for its history).
- ``FakeLookupd(nsqds)`` answers lookupd's HTTP API (reference §5.3) with NSQ's JSON shapes,
  listing the given in-process nsqds as producers of the topics they hold right now, and
  records every POST it gets (``calls``) so tests can check what the admin asked of lookupds.
  ``fake_lookupd`` starts one (real HTTP on 127.0.0.1:0) and returns it with its address.
  The real ``pnsq lookupd`` replaces it once it lands.
- ``silent_node``: a TCP listener that accepts and never answers, for "a node that hangs".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pnsq.admin.options import AdminOptions
from pnsq.admin.server import AdminServer
from pnsq.nsqd.nsqd import NSQD

MakeAdmin = Callable[..., Awaitable[AdminServer]]


@pytest.fixture
async def make_admin(nursery: trio.Nursery) -> MakeAdmin:
    async def make(**overrides: Any) -> AdminServer:
        options = AdminOptions(**{"http_address": "127.0.0.1:0", **overrides})
        server = AdminServer(options)
        await nursery.start(server.serve)
        return server

    return make


def address(pair: tuple[str, int] | None) -> str:
    assert pair is not None
    return f"{pair[0]}:{pair[1]}"


class FakeLookupd:
    def __init__(self, nsqds: list[NSQD]) -> None:
        self.nsqds = nsqds
        self.topics: dict[str, set[str]] = {}  # registrations made over HTTP
        self.tombstones: set[tuple[str, str]] = set()
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.address = ""

    def _producers(self) -> list[dict[str, Any]]:
        producers = []
        for nsqd in self.nsqds:
            assert nsqd.tcp_address is not None
            assert nsqd.http_address is not None
            node = address(nsqd.http_address)
            topics = sorted(nsqd.topics)
            producers.append(
                {
                    "remote_address": f"127.0.0.1:{nsqd.tcp_address[1] + 10000}",
                    "hostname": "fake-host",
                    "broadcast_address": "127.0.0.1",
                    "tcp_port": nsqd.tcp_address[1],
                    "http_port": nsqd.http_address[1],
                    "version": "1.3.0",
                    "topology_zone": "",
                    "topology_region": "",
                    "topics": topics,
                    "tombstones": [(t, node) in self.tombstones for t in topics],
                }
            )
        return producers

    def _all_topics(self) -> dict[str, set[str]]:
        topics = {t: set(c) for t, c in self.topics.items()}
        for nsqd in self.nsqds:
            for name, topic in nsqd.topics.items():
                topics.setdefault(name, set()).update(topic.channels)
        return topics

    def app(self) -> Starlette:
        async def nodes(request: Request) -> Response:
            return JSONResponse({"producers": self._producers()})

        async def topics(request: Request) -> Response:
            return JSONResponse({"topics": sorted(self._all_topics())})

        async def channels(request: Request) -> Response:
            topic = request.query_params.get("topic", "")
            return JSONResponse({"channels": sorted(self._all_topics().get(topic, ()))})

        async def post(request: Request) -> Response:
            params = dict(request.query_params)
            self.calls.append((request.url.path, params))
            path, topic = request.url.path, params.get("topic", "")
            if path == "/topic/create":
                self.topics.setdefault(topic, set())
            elif path == "/channel/create":
                self.topics.setdefault(topic, set()).add(params["channel"])
            elif path == "/topic/delete":
                self.topics.pop(topic, None)
            elif path == "/channel/delete":
                self.topics.get(topic, set()).discard(params["channel"])
            elif path == "/topic/tombstone":
                self.tombstones.add((topic, params["node"]))
            return Response(b"", 200)

        routes = [
            Route("/nodes", nodes),
            Route("/topics", topics),
            Route("/channels", channels),
            *[
                Route(p, post, methods=["POST"])
                for p in (
                    "/topic/create",
                    "/topic/delete",
                    "/channel/create",
                    "/channel/delete",
                    "/topic/tombstone",
                )
            ],
        ]
        return Starlette(routes=routes)

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        config = Config()
        config.bind = ["127.0.0.1:0"]
        config.accesslog = None
        config.graceful_timeout = 0.5

        async with trio.open_nursery() as nursery:
            binds = await nursery.start(serve, self.app(), config)
            self.address = binds[0].split("://", 1)[1]
            task_status.started()


@pytest.fixture
async def fake_lookupd(nursery: trio.Nursery) -> Callable[[list[NSQD]], Awaitable[FakeLookupd]]:
    async def start(nsqds: list[NSQD]) -> FakeLookupd:
        lookupd = FakeLookupd(nsqds)
        await nursery.start(lookupd.serve)
        return lookupd

    return start


@pytest.fixture
async def silent_node(nursery: trio.Nursery) -> str:
    """An address that accepts connections and never says a word."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    held: list[trio.SocketStream] = []

    async def hold(stream: trio.SocketStream) -> None:
        held.append(stream)
        await trio.sleep_forever()

    nursery.start_soon(trio.serve_listeners, hold, listeners)
    return address(listeners[0].socket.getsockname())
