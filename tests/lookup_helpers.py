"""Helpers for the lookupd tests (tests/ is on sys.path, see tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from pnsq.lookupd import Lookupd

MakeLookupd = Callable[..., Awaitable[Lookupd]]


def tcp(lookupd: Lookupd) -> str:
    assert lookupd.tcp_address is not None
    return "{}:{}".format(*lookupd.tcp_address)


async def until(predicate: Callable[[], object], deadline: float = 10.0) -> None:
    """Wait, under a deadline, for a condition other tasks bring about."""
    with trio.fail_after(deadline):
        while not predicate():  # noqa: ASYNC110 - state changed by other tasks, no event
            await trio.sleep(0.01)
