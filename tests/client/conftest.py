"""Fixtures of the client tests: nsqds and an nsqlookupd in threads (for asyncio tests).

``threaded_nsqds(count, **options)`` starts ``count`` ThreadedNSQDs; ``threaded_lookupd`` is a
started ThreadedLookupd (tests/threaded_nsqd.py). All are stopped at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from threaded_nsqd import ThreadedLookupd, ThreadedNSQD


@pytest.fixture
def threaded_lookupd() -> Iterator[ThreadedLookupd]:
    lookupd = ThreadedLookupd().start()
    yield lookupd
    lookupd.stop()


@pytest.fixture
def threaded_nsqds() -> Iterator[Callable[..., list[ThreadedNSQD]]]:
    started: list[ThreadedNSQD] = []

    def make(count: int, **options: Any) -> list[ThreadedNSQD]:
        new = [ThreadedNSQD(**options).start() for _ in range(count)]
        started.extend(new)
        return new

    yield make
    for server in started:
        server.stop()
