"""Fixtures shared by every test: running nsqds on 127.0.0.1 and a small HTTP client.

- ``make_nsqd(**option_overrides)`` starts an nsqd in the fixture's nursery and returns it:
  TCP and HTTP on 127.0.0.1 port 0 (read the bound ports from ``nsqd.tcp_address`` and
  ``nsqd.http_address``), broadcast address 127.0.0.1, its own temporary data path; any
  ``Options`` field can be overridden (``http_address=""`` turns HTTP off). Every nsqd it
  started is stopped when the test ends.
- ``nsqd``: one such nsqd with the defaults. (tests/nsqd/conftest.py has its own ``nsqd``,
  without HTTP, which wins under tests/nsqd/.)
- ``make_lookupd(**option_overrides)`` starts an in-process lookupd the same way (TCP and HTTP
  on 127.0.0.1 port 0: ``lookupd.tcp_address`` / ``lookupd.http_address``), stopped at the end.
- ``http``: ``await http(address, method, target, body=b"", headers=())`` sends one request on
  a fresh connection and returns ``HTTPResponse(status, headers, body)``; ``.json()`` decodes
  the body; header names are lower case. Each call fails after ``HTTP_TIMEOUT`` seconds.

``tests/`` is put on sys.path so that tests can import the shared helpers (``v2client``).
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

import h11
import pytest
import trio

from pnsq.lookupd import Lookupd, LookupdOptions
from pnsq.nsqd.nsqd import NSQD
from pnsq.nsqd.options import Options

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

HTTP_TIMEOUT = 10.0
MakeNSQD = Callable[..., Awaitable[NSQD]]
MakeLookupd = Callable[..., Awaitable[Lookupd]]


@pytest.fixture
async def make_nsqd(nursery: trio.Nursery, tmp_path: Path) -> AsyncIterator[MakeNSQD]:
    started: list[NSQD] = []
    numbers = itertools.count()

    async def make(**option_overrides: Any) -> NSQD:
        data_path = tmp_path / f"nsqd{next(numbers)}"
        data_path.mkdir()
        options: dict[str, Any] = {
            "tcp_address": "127.0.0.1:0",
            "http_address": "127.0.0.1:0",
            "broadcast_address": "127.0.0.1",
            "data_path": str(data_path),
            **option_overrides,
        }
        nsqd = NSQD(Options(**options))
        await nursery.start(nsqd.serve)
        started.append(nsqd)
        return nsqd

    yield make
    for nsqd in started:
        nsqd.stop()


@pytest.fixture
async def nsqd(make_nsqd: MakeNSQD) -> NSQD:
    return await make_nsqd()


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


class HTTPResponse(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Headers = Iterable[tuple[str, str]]
HTTPRequest = Callable[..., Awaitable[HTTPResponse]]


async def http_request(
    address: tuple[str, int] | None,
    method: str,
    target: str,
    body: bytes = b"",
    headers: Headers = (),
) -> HTTPResponse:
    """One request on a fresh connection, read to the end of its response."""
    assert address is not None, "this nsqd has no HTTP listener"
    conn = h11.Connection(h11.CLIENT)
    all_headers = [("Host", f"{address[0]}:{address[1]}"), *headers]
    if body and not any(name.lower() == "transfer-encoding" for name, _ in all_headers):
        all_headers.append(("Content-Length", str(len(body))))
    with trio.fail_after(HTTP_TIMEOUT):
        stream = await trio.open_tcp_stream(*address)
        async with stream:
            data = conn.send(h11.Request(method=method, target=target, headers=all_headers))
            if body:
                data += conn.send(h11.Data(data=body))
            data += conn.send(h11.EndOfMessage())
            await stream.send_all(data)
            return await _read_response(conn, stream)


async def _read_response(conn: h11.Connection, stream: trio.SocketStream) -> HTTPResponse:
    response: h11.Response | None = None
    chunks: list[bytes] = []
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(65536))
        elif isinstance(event, h11.Response):
            response = event
        elif isinstance(event, h11.Data):
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            assert response is not None
            headers = {name.decode().lower(): value.decode() for name, value in response.headers}
            return HTTPResponse(response.status_code, headers, b"".join(chunks))
        elif not isinstance(event, h11.InformationalResponse):
            raise AssertionError(f"unexpected HTTP event {event!r}")


@pytest.fixture
def http() -> HTTPRequest:
    return http_request
