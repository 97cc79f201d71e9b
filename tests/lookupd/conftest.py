"""Fixtures for nsqlookupd tests.

- ``make_lookupd(**option_overrides)`` (tests/conftest.py) starts an in-process lookupd on
  127.0.0.1 port 0 (TCP and HTTP; read ``lookupd.tcp_address`` / ``lookupd.http_address``).
- ``lookupd``: one such lookupd. Helpers (``tcp``, ``until``) are in tests/lookup_helpers.py.
"""

from __future__ import annotations

import pytest
from lookup_helpers import MakeLookupd

from pnsq.lookupd import Lookupd


@pytest.fixture
async def lookupd(make_lookupd: MakeLookupd) -> Lookupd:
    return await make_lookupd()
