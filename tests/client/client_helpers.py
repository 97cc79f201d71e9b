"""Helpers for the client tests (fixtures in conftest.py): addresses of in-process nsqds, nsqds in threads (for asyncio
tests), and a fake nsqlookupd answering /lookup with NSQ's JSON shape."""

from __future__ import annotations

import json
import threading
from collections.abc import Awaitable, Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlparse

import anyio

from pnsq.nsqd.nsqd import NSQD

T = TypeVar("T")
MakeNSQD = Callable[..., Awaitable[NSQD]]


def tcp(nsqd: NSQD) -> str:
    assert nsqd.tcp_address is not None
    return "{}:{}".format(*nsqd.tcp_address)


class FakeLookupd:
    """nsqlookupd's GET /lookup on 127.0.0.1:0; ``producers[topic]`` is a list of (host, port)."""

    def __init__(self) -> None:
        self.producers: dict[str, list[tuple[str, int]]] = {}
        self.requests = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.requests += 1
                url = urlparse(self.path)
                topic = parse_qs(url.query).get("topic", [""])[0]
                if url.path != "/lookup" or topic not in fake.producers:
                    self._reply(404, {"message": "TOPIC_NOT_FOUND"})
                    return
                peers = [
                    {
                        "remote_address": f"{host}:40000",
                        "hostname": "test",
                        "broadcast_address": host,
                        "tcp_port": port,
                        "http_port": 0,
                        "version": "1.3.0",
                        "topology_zone": "",
                        "topology_region": "",
                    }
                    for host, port in fake.producers[topic]
                ]
                self._reply(200, {"channels": [], "producers": peers})

            def _reply(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("X-NSQ-Content-Type", "nsq; version=1.0")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, fmt: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


async def wait_until(predicate: Callable[[], object], seconds: float = 20.0) -> None:
    """Until ``predicate()`` holds (client state that no event announces), under a deadline."""
    with anyio.fail_after(seconds):
        while not predicate():  # noqa: ASYNC110 - polling client state, bounded by the deadline
            await anyio.sleep(0.01)
