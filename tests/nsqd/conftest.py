"""Fixtures for the nsqd tests: the root ``make_nsqd``, without an HTTP listener unless asked.

``start_nsqd(**overrides)`` starts an nsqd with those options and returns it (stopped when the
test ends); ``nsqd`` is one with the defaults and ``address`` its TCP address.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from pnsq.nsqd.nsqd import NSQD

StartNSQD = Callable[..., Awaitable[NSQD]]


@pytest.fixture
def start_nsqd(make_nsqd: StartNSQD) -> StartNSQD:
    async def start(**overrides: Any) -> NSQD:
        return await make_nsqd(**{"http_address": "", **overrides})

    return start


@pytest.fixture
async def nsqd(start_nsqd: StartNSQD) -> NSQD:
    return await start_nsqd()


@pytest.fixture
def address(nsqd: NSQD) -> tuple[str, int]:
    assert nsqd.tcp_address is not None
    return nsqd.tcp_address
