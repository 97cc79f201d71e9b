"""Fixtures for the nsqd tests: an nsqd on 127.0.0.1:0 started inside the test's trio run.

``start_nsqd(**overrides)`` starts one with ``Options(**overrides)`` (no HTTP listener unless
asked) and returns it; every nsqd it started is stopped when the test ends. ``tests/`` goes on
sys.path so that the tests can import the shared test client (``v2client``).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from pnsq.nsqd.nsqd import NSQD
from pnsq.nsqd.options import Options

_TESTS = str(Path(__file__).resolve().parent.parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

StartNSQD = Callable[..., Awaitable[NSQD]]


@pytest.fixture
async def start_nsqd(nursery: trio.Nursery) -> AsyncIterator[StartNSQD]:
    started: list[NSQD] = []

    async def start(**overrides: Any) -> NSQD:
        options = {"tcp_address": "127.0.0.1:0", "http_address": "", **overrides}
        nsqd = NSQD(Options(**options))
        await nursery.start(nsqd.serve)
        started.append(nsqd)
        return nsqd

    yield start
    for nsqd in started:
        nsqd.stop()


@pytest.fixture
async def nsqd(start_nsqd: StartNSQD) -> NSQD:
    return await start_nsqd()


@pytest.fixture
def address(nsqd: NSQD) -> tuple[str, int]:
    assert nsqd.tcp_address is not None
    return nsqd.tcp_address
