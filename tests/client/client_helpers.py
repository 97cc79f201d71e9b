"""Helpers for the client tests (fixtures in conftest.py): addresses of in-process nsqds and
nsqlookupds, what a lookupd knows, and waiting for client state."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from pnsq.lookupd import Lookupd
from pnsq.nsqd.nsqd import NSQD

T = TypeVar("T")
MakeNSQD = Callable[..., Awaitable[NSQD]]


def tcp(daemon: NSQD | Lookupd) -> str:
    assert daemon.tcp_address is not None
    return "{}:{}".format(*daemon.tcp_address)


def lookupd_http(lookupd: Lookupd) -> str:
    """The lookupd's HTTP address, for a consumer's ``lookupd_http_addresses``."""
    assert lookupd.http_address is not None
    return "{}:{}".format(*lookupd.http_address)


def producer_count(lookupd: Lookupd, topic: str) -> int:
    """How many nsqds have registered ``topic`` with the lookupd."""
    return len(lookupd.db.topics.get(topic, {}))


async def wait_until(predicate: Callable[[], object], seconds: float = 20.0) -> None:
    """Until ``predicate()`` holds (client state that no event announces), under a deadline."""
    with anyio.fail_after(seconds):
        while not predicate():  # noqa: ASYNC110 - polling client state, bounded by the deadline
            await anyio.sleep(0.01)
