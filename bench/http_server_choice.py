#!/usr/bin/env python3
"""Which HTTP/1.1 server should nsqd's HTTP API sit on: h11 driven on trio, or hypercorn?

    .venv/bin/python bench/http_server_choice.py [--seconds 3] [--clients 4]

Both serve a trivial ``GET /ping`` -> ``200 OK`` with keep-alive: "h11-on-trio" is pnsq's own
nsqd HTTP server (pnsq/nsqd/http_api.py, the real code path), "hypercorn" is hypercorn's trio
worker running a minimal ASGI app answering the same bytes. Each server runs alone in a process
pinned to CPU 0; the load comes from ``--clients`` processes pinned to the other CPU, each with
one raw keep-alive socket to 127.0.0.1 sending a request and reading the whole answer in a
loop. Every run is bounded (at most 10 s of load). hypercorn is only needed for this
measurement (``.venv/bin/pip install hypercorn``); without it, only h11-on-trio is measured.

Result on the 2-core machine of PERFORMANCE.md (Python 3.11, trio 0.35, h11 0.16, hypercorn
0.18; one run, 4 clients, 3 s): h11-on-trio 11,804 req/s, hypercorn 7,715 req/s, a ratio of
1.53, so nsqd drives h11 itself and hypercorn stays out of the dependencies.

Since then nsqd's server parses with llhttp (httptools) and calls plain sockets directly (the
choice and its figures: bench/README.md, "What each step bought"); "h11-on-trio" here now
measures that server, under its old name.
"""

from __future__ import annotations

import argparse
import importlib
import multiprocessing
import os
import re
import socket
import sys
import time
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
REQUEST = b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
_CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")
MAX_SECONDS = 10.0


def _pin(cpu: int) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[cpu % len(cpus)]})


# -- the servers (each in its own process) ------------------------------------------------------


def _serve_h11(port_out: Any) -> None:
    import trio

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from pnsq.nsqd.nsqd import NSQD
    from pnsq.nsqd.options import Options

    async def main() -> None:
        nsqd = NSQD(Options(tcp_address=f"{HOST}:0", http_address=f"{HOST}:0"))
        async with trio.open_nursery() as nursery:
            await nursery.start(nsqd.serve)
            assert nsqd.http_address is not None
            port_out.put(nsqd.http_address[1])

    trio.run(main)


async def _ping_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"x-nsq-content-type", b"nsq; version=1.0"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"OK"})


def _serve_hypercorn(port_out: Any) -> None:
    import trio

    config_module = importlib.import_module("hypercorn.config")
    serve = importlib.import_module("hypercorn.trio").serve
    with socket.socket() as probe:  # a free port for hypercorn to bind
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    config = config_module.Config()
    config.bind = [f"{HOST}:{port}"]
    config.accesslog = None
    config.errorlog = None
    config.keep_alive_max_requests = 1 << 30  # its default closes after 1000

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve, _ping_app, config)
            for _ in range(500):  # wait until it accepts
                try:
                    socket.create_connection((HOST, port), timeout=1).close()
                    break
                except OSError:
                    await trio.sleep(0.01)
            port_out.put(port)

    trio.run(main)


def _server_process(kind: str, port_out: Any) -> None:
    _pin(0)
    {"h11-on-trio": _serve_h11, "hypercorn": _serve_hypercorn}[kind](port_out)


# -- the load -----------------------------------------------------------------------------------


def _read_response(sock: socket.socket, buf: bytearray) -> None:
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            match = _CONTENT_LENGTH.search(buf, 0, end + 2)
            total = end + 4 + (int(match.group(1)) if match else 0)
            if len(buf) >= total:
                del buf[:total]
                return
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buf += chunk


def _client_process(port: int, start_at: float, stop_at: float, results: Any) -> None:
    _pin(1)
    count, buf = 0, bytearray()
    with socket.create_connection((HOST, port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(REQUEST)  # warm the connection up before the clock starts
        _read_response(sock, buf)
        time.sleep(max(start_at - time.time(), 0))
        while time.time() < stop_at:
            sock.sendall(REQUEST)
            _read_response(sock, buf)
            count += 1
    results.put(count)


def measure(kind: str, seconds: float, clients: int) -> float:
    """Requests per second of ``kind`` under ``clients`` keep-alive connections."""
    ctx = multiprocessing.get_context("fork")
    ports, results = ctx.Queue(), ctx.Queue()
    server = ctx.Process(target=_server_process, args=(kind, ports), daemon=True)
    server.start()
    try:
        port = ports.get(timeout=20)
        start_at = time.time() + 0.5
        stop_at = start_at + min(seconds, MAX_SECONDS)
        loads = [
            ctx.Process(target=_client_process, args=(port, start_at, stop_at, results))
            for _ in range(clients)
        ]
        for load in loads:
            load.start()
        total: int = sum(results.get(timeout=MAX_SECONDS + 20) for _ in loads)
        for load in loads:
            load.join()
        return total / (stop_at - start_at)
    finally:
        server.kill()
        server.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    kinds = ["h11-on-trio"]
    if importlib.util.find_spec("hypercorn") is not None:
        kinds.append("hypercorn")
    else:
        print("hypercorn is not installed: measuring h11-on-trio only")
    rates = {kind: measure(kind, args.seconds, args.clients) for kind in kinds}
    for kind, rate in rates.items():
        print(f"{kind:<12} {rate:>10,.0f} req/s  ({args.clients} clients, {args.seconds:g} s)")
    if len(rates) == 2:
        print(f"h11-on-trio / hypercorn = {rates['h11-on-trio'] / rates['hypercorn']:.2f}")


if __name__ == "__main__":
    main()
