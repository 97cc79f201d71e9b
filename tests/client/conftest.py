"""Fixtures of the client tests: a fake nsqlookupd and nsqds in threads (asyncio tests)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from client_helpers import FakeLookupd
from threaded_nsqd import ThreadedNSQD


@pytest.fixture
def fake_lookupd() -> Iterator[FakeLookupd]:
    lookupd = FakeLookupd()
    yield lookupd
    lookupd.close()


@pytest.fixture
def threaded_nsqds() -> Iterator[Callable[[int], list[ThreadedNSQD]]]:
    started: list[ThreadedNSQD] = []

    def make(count: int) -> list[ThreadedNSQD]:
        new = [ThreadedNSQD().start() for _ in range(count)]
        started.extend(new)
        return new

    yield make
    for server in started:
        server.stop()
