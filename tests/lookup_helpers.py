"""Helpers for the tests with a lookupd (tests/ is on sys.path, see tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio

from pnsq.lookupd import Lookupd
from pnsq.nsqd.nsqd import NSQD

MakeLookupd = Callable[..., Awaitable[Lookupd]]


def tcp(lookupd: Lookupd) -> str:
    assert lookupd.tcp_address is not None
    return "{}:{}".format(*lookupd.tcp_address)


async def until(predicate: Callable[[], object], deadline: float = 10.0) -> None:
    """Wait, under a deadline, for a condition other tasks bring about."""
    with trio.fail_after(deadline):
        while not predicate():  # noqa: ASYNC110 - state changed by other tasks, no event
            await trio.sleep(0.01)


def knows(lookupd: Lookupd, nsqd: NSQD) -> bool:
    """Whether ``lookupd`` has every topic and channel of ``nsqd`` registered by it."""
    assert nsqd.tcp_address is not None
    port = nsqd.tcp_address[1]

    def by_nsqd(producers: dict[str, Any]) -> bool:
        return any(p.peer.info["tcp_port"] == port for p in producers.values())

    db = lookupd.db
    return all(
        by_nsqd(db.topics.get(name, {}))
        and all(by_nsqd(db.channels.get(name, {}).get(c, {})) for c in topic.channels)
        for name, topic in nsqd.topics.items()
    )
