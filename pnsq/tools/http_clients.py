"""The HTTP clients of ``pnsq to-http``: one keep-alive connection each, kept per endpoint.

httpx's connection pool scans all its connections for every request (httpcore's request
assignment), so one client with ``-n 100`` connections did worse than one connection (on a
shared 2-core machine, endpoint in the same process: ~200-780 vs ~1,500 requests/s). Here
each httpx client holds a single connection and each endpoint has a free list of idle clients:
a request takes one (or makes one) and puts it back, O(1) whatever ``-n`` is. There are never more than
``-n`` clients in use, since the consumer runs at most ``-n`` handlers. The TLS context is built
once and shared: building one per client costs ~50 ms.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

import httpx


class ClientPool:
    def __init__(self, endpoints: int, *, timeout: httpx.Timeout, headers: Mapping[str, str]):
        self.timeout, self.headers = timeout, dict(headers)
        self._idle: list[deque[httpx.AsyncClient]] = [deque() for _ in range(endpoints)]
        self._all: list[httpx.AsyncClient] = []
        self._tls = httpx.create_ssl_context()

    def acquire(self, endpoint: int) -> httpx.AsyncClient:
        idle = self._idle[endpoint]
        return idle.pop() if idle else self._new()

    def release(self, endpoint: int, client: httpx.AsyncClient) -> None:
        self._idle[endpoint].append(client)

    def _new(self) -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            timeout=self.timeout,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            headers=self.headers,
            verify=self._tls,
        )
        self._all.append(client)
        return client

    async def aclose(self) -> None:
        for client in self._all:
            await client.aclose()
        self._all.clear()
