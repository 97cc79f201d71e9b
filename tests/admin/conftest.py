"""Fixtures for the admin tests: the admin itself, and a node that hangs.

- ``make_admin(**option_overrides)`` starts an ``AdminServer`` on 127.0.0.1:0 in the test's
  nursery and returns it (``server.http_address``, ``server.admin`` for its history).
- ``silent_node``: a TCP listener that accepts and never answers, for "a node (or lookupd)
  that hangs".

A lookupd comes from ``make_lookupd`` (tests/conftest.py): the real one, in-process, with real
nsqds registered over TCP (``make_nsqd(nsqlookupd_tcp_addresses=...)``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio

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
