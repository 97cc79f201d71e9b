#!/usr/bin/env python3
"""How long does an admin page's data take: all nodes up, and with one node that never answers.

    .venv/bin/python bench/admin_latency.py [--requests 50]

One process runs two nsqds (100 topics of 2 channels each, so /stats documents are not tiny),
the admin (hypercorn's trio worker, starlette, httpx to the nodes) and the client, all on trio
and 127.0.0.1; it times ``GET /api/topics`` and ``GET /api/topics/t0`` sequentially and prints
the median and the 95th percentile. Then it adds a third "node" that accepts connections and
never answers, and times the same pages again: they must come back after about
``--http-client-request-timeout`` (1 s here), with the silent node marked down.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import httpx
import trio

from pnsq.admin.options import AdminOptions
from pnsq.admin.server import AdminServer
from pnsq.nsqd.nsqd import NSQD
from pnsq.nsqd.options import Options


async def _nsqd(nursery: trio.Nursery, data: str) -> str:
    nsqd = NSQD(
        Options(
            tcp_address="127.0.0.1:0",
            http_address="127.0.0.1:0",
            broadcast_address="127.0.0.1",
            data_path=data,
        )
    )
    await nursery.start(nsqd.serve)
    assert nsqd.http_address is not None
    address = f"127.0.0.1:{nsqd.http_address[1]}"
    async with httpx.AsyncClient() as client:
        for i in range(100):
            for channel in ("a", "b"):
                await client.post(f"http://{address}/channel/create?topic=t{i}&channel={channel}")
            await client.post(f"http://{address}/pub?topic=t{i}", content=b"x")
    return address


async def _time(base: str, path: str, n: int) -> tuple[float, float]:
    times = []
    async with httpx.AsyncClient(timeout=30) as client:
        for _ in range(n):
            start = time.perf_counter()
            response = await client.get(base + path)
            times.append(time.perf_counter() - start)
            assert response.status_code == 200
    times.sort()
    return statistics.median(times) * 1000, times[int(len(times) * 0.95) - 1] * 1000


async def _silent(nursery: trio.Nursery) -> str:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")

    async def hold(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    nursery.start_soon(trio.serve_listeners, hold, listeners)
    return f"127.0.0.1:{listeners[0].socket.getsockname()[1]}"


async def main(requests: int) -> None:
    with tempfile.TemporaryDirectory() as data:
        async with trio.open_nursery() as nursery:
            nodes = [await _nsqd(nursery, data), await _nsqd(nursery, data)]
            silent = await _silent(nursery)
            for label, addresses in (("2 nodes up", nodes), ("+1 silent node", [*nodes, silent])):
                options = AdminOptions(
                    http_address="127.0.0.1:0",
                    nsqd_http_addresses=tuple(addresses),
                    http_client_request_timeout=1.0,
                    sample_interval=60.0,
                )
                admin = AdminServer(options)
                host, port = await nursery.start(admin.serve)
                n = requests if label == "2 nodes up" else 5
                for path in ("/api/topics", "/api/topics/t0"):
                    median, p95 = await _time(f"http://{host}:{port}", path, n)
                    print(f"{label:15} GET {path:16} median {median:7.1f} ms  p95 {p95:7.1f} ms")
            nursery.cancel_scope.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50)
    trio.run(main, parser.parse_args().requests)
