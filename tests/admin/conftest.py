"""Fixtures for the admin tests: the admin itself, and a node that hangs.

- ``make_admin(**option_overrides)`` starts an ``AdminServer`` on 127.0.0.1:0 in the test's
  nursery and returns it (``server.http_address``, ``server.admin`` for its history).
- ``silent_node``: a TCP listener that accepts and never answers, for "a node (or lookupd)
  that hangs".
- ``sink``: a small HTTP server that takes every POST's JSON body (the notification endpoint).
- ``tls_proxy(target, ca, client_ca=None)``: an HTTPS front for a real nsqd's HTTP API, with a
  certificate from a trustme CA (and client certificates required when ``client_ca`` is given),
  standing in for an nsqd that serves HTTPS.

A lookupd comes from ``make_lookupd`` (tests/conftest.py): the real one, in-process, with real
nsqds registered over TCP (``make_nsqd(nsqlookupd_tcp_addresses=...)``).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import h11
import pytest
import trio
import trustme
from fake_http import serve_h11

from pnsq.admin.options import AdminOptions
from pnsq.admin.server import AdminServer

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


@dataclass
class Sink:
    """The notification endpoint: ``address``, and every JSON body POSTed to it, in order."""

    address: str = ""
    received: list[Any] = field(default_factory=list)
    arrived: trio.Event = field(default_factory=trio.Event)

    async def wait_for(self, count: int) -> list[Any]:
        with trio.fail_after(10):
            while len(self.received) < count:
                await self.arrived.wait()
                self.arrived = trio.Event()
        return self.received


def _sink_answer(
    sink: Sink, request: h11.Request, body: bytes
) -> tuple[int, list[tuple[str, str]], bytes]:
    sink.received.append(json.loads(body))
    sink.arrived.set()
    return 200, [], b""


@pytest.fixture
async def sink(nursery: trio.Nursery) -> Sink:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    result = Sink(address(listeners[0].socket.getsockname()))
    nursery.start_soon(
        trio.serve_listeners,
        lambda stream: serve_h11(stream, lambda r, b: _sink_answer(result, r, b)),
        listeners,
    )
    return result


async def _pipe(source: trio.abc.ReceiveStream, sink: trio.abc.SendStream) -> None:
    while data := await source.receive_some(65536):
        await sink.send_all(data)


async def _proxy(
    context: ssl.SSLContext, target: tuple[str, int], stream: trio.SocketStream
) -> None:
    tls = trio.SSLStream(stream, context, server_side=True)
    try:
        await tls.do_handshake()
        upstream = await trio.open_tcp_stream(*target)
        async with upstream, trio.open_nursery() as nursery:

            async def one_way(a: Any, b: Any) -> None:
                await _pipe(a, b)
                nursery.cancel_scope.cancel()

            nursery.start_soon(one_way, tls, upstream)
            nursery.start_soon(one_way, upstream, tls)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass  # a refused handshake or a peer that went away: that connection only
    finally:
        await trio.aclose_forcefully(tls)


TLSProxy = Callable[..., Awaitable[str]]


@pytest.fixture
async def tls_proxy(nursery: trio.Nursery) -> TLSProxy:
    async def make(
        target: tuple[str, int] | None, ca: trustme.CA, client_ca: trustme.CA | None = None
    ) -> str:
        assert target is not None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        if client_ca is not None:
            client_ca.configure_trust(context)
            context.verify_mode = ssl.CERT_REQUIRED
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        nursery.start_soon(trio.serve_listeners, lambda s: _proxy(context, target, s), listeners)
        return address(listeners[0].socket.getsockname())

    return make
