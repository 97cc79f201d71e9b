"""Fixtures for nsqlookupd tests.

- ``make_lookupd(**option_overrides)`` starts an in-process lookupd on 127.0.0.1 port 0 (TCP
  and HTTP; read ``lookupd.tcp_address`` / ``lookupd.http_address``), stopped at the end.
- ``lookupd``: one such lookupd. Helpers (``tcp``, ``until``) are in tests/lookup_helpers.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from lookup_helpers import MakeLookupd

from pnsq.lookupd import Lookupd, LookupdOptions


@pytest.fixture
async def make_lookupd(nursery: trio.Nursery) -> AsyncIterator[MakeLookupd]:
    started: list[Lookupd] = []

    async def make(**overrides: Any) -> Lookupd:
        options = {
            "tcp_address": "127.0.0.1:0",
            "http_address": "127.0.0.1:0",
            "broadcast_address": "127.0.0.1",
            **overrides,
        }
        lookupd = Lookupd(LookupdOptions(**options))
        await nursery.start(lookupd.serve)
        started.append(lookupd)
        return lookupd

    yield make
    for lookupd in started:
        lookupd.stop()


@pytest.fixture
async def lookupd(make_lookupd: MakeLookupd) -> Lookupd:
    return await make_lookupd()
