#!/usr/bin/env python3
"""The load generators' own ceiling: each one against a fake nsqd that does no work.

    .venv/bin/python bench/generator_ceiling.py [--runfor 3s] [--json]

Why: a figure of bench/run.py is nsqd's only if the generator could go much faster. The fake
answers every PUB / MPUB with a pre-built ``OK`` frame, streams pre-built 200-byte message
frames after ``RDY`` (reading and dropping the FINs), and answers every HTTP request with a
pre-built ``200 OK`` (closing the connection when the request asked for it). It is pre-forked:
``--fake-workers`` processes per listening socket, each accepting and serving one connection
at a time with a blocking socket, so it needs at least as many workers as a generator has
connections. The fake is pinned to the first CPU and the generators to the second, as nsqd and
the generators are in bench/run.py; the fake processes are stopped by their PIDs.
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import os
import socket
import struct
import sys
from typing import TYPE_CHECKING, Any

from load_loops import FRAME_MESSAGE, OK_FRAME
from nsq_load import (
    ALLOWED_HOST,
    parse_duration,
    positive,
    run_http_pub,
    run_pub,
    run_reader,
    run_writer,
)
from nsqd_process import pick_cpus

if TYPE_CHECKING:
    from collections.abc import Callable
    from multiprocessing.process import BaseProcess

    from nsq_load import LoadResult

MESSAGE_FRAME = (
    struct.pack(">IIqH", 4 + 8 + 2 + 16 + 200, FRAME_MESSAGE, 0, 1) + b"0" * 16 + b"x" * 200
)
STREAM_BLOCK = MESSAGE_FRAME * 100
HTTP_OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nOK"
HTTP_OK_CLOSE = HTTP_OK.replace(b"Content-Length", b"Connection: close\r\nContent-Length")
WITH_BODY = (b"PUB ", b"MPUB ", b"IDENTIFY")


def serve_tcp(conn: socket.socket) -> None:
    """NSQ V2 as far as the generators need it; no queueing, no validation."""
    buf = bytearray()
    while len(buf) < 4:  # the magic "  V2"
        if not (chunk := conn.recv(4)):
            return None
        buf += chunk
    del buf[:4]
    while chunk := conn.recv(1 << 16):
        buf += chunk
        pos = replies = 0
        streaming = False
        while (nl := buf.find(b"\n", pos)) >= 0:
            if buf.startswith(WITH_BODY, pos):
                if len(buf) < nl + 5 or len(buf) < (
                    end := nl + 5 + int.from_bytes(buf[nl + 1 : nl + 5])
                ):
                    break
                pos, replies = end, replies + 1
                continue
            replies += buf.startswith(b"SUB ", pos)
            streaming = streaming or buf.startswith(b"RDY ", pos)
            pos = nl + 1
        del buf[:pos]
        if replies:
            conn.sendall(OK_FRAME * replies)
        if streaming:
            return stream(conn)
    return None


def stream(conn: socket.socket) -> None:
    """Message frames until the reader hangs up; its FINs are read and dropped."""
    while True:
        try:
            conn.sendall(STREAM_BLOCK)
            if conn.recv(1 << 20, socket.MSG_DONTWAIT) == b"":
                return
        except BlockingIOError:
            continue
        except OSError:
            return


def serve_http(conn: socket.socket) -> None:
    buf = bytearray()
    while True:
        while (head_end := buf.find(b"\r\n\r\n")) < 0:
            if not (chunk := conn.recv(1 << 16)):
                return
            buf += chunk
        head = bytes(buf[:head_end]).lower()
        at = head.find(b"content-length:")
        length = int(head[at + 15 :].split(b"\r\n", 1)[0]) if at >= 0 else 0
        while len(buf) < head_end + 4 + length:
            if not (chunk := conn.recv(1 << 16)):
                return
            buf += chunk
        del buf[: head_end + 4 + length]
        if b"connection: close" in head:
            conn.sendall(HTTP_OK_CLOSE)
            return
        conn.sendall(HTTP_OK)


def accept_loop(listener: socket.socket, serve: Callable[[socket.socket], None]) -> None:
    while True:
        conn, _ = listener.accept()
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                serve(conn)
            except OSError:
                pass


class FakeNsqd:
    """Two listening sockets at 127.0.0.1:0 and their pre-forked worker processes."""

    def __init__(self, workers: int, cpu: int | None) -> None:
        self.procs: list[BaseProcess] = []
        ctx = multiprocessing.get_context("fork")
        self.addresses: list[tuple[str, int]] = []
        mine = os.sched_getaffinity(0)
        if cpu is not None:  # the workers inherit it
            os.sched_setaffinity(0, {cpu})
        try:
            for serve in (serve_tcp, serve_http):
                listener = socket.create_server((ALLOWED_HOST, 0), backlog=1024)
                self.addresses.append(listener.getsockname()[:2])
                for _ in range(workers):
                    proc = ctx.Process(target=accept_loop, args=(listener, serve), daemon=True)
                    proc.start()
                    self.procs.append(proc)
                listener.close()  # the workers hold it
        finally:
            os.sched_setaffinity(0, mine)
        self.tcp, self.http = self.addresses

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.join(5)


def loads(
    tcp: tuple[str, int], http: tuple[str, int], runfor: float
) -> dict[str, Callable[[], LoadResult]]:
    """Every generator as bench/run.py runs it, by name (nothing runs until called)."""
    table: dict[str, Callable[[], LoadResult]] = {
        "writer-2": lambda: run_writer(tcp, "t", 200, 200, 2, runfor),
        "reader-1": lambda: run_reader(tcp, "t", "c", 1, 2500, runfor),
        "reader-2": lambda: run_reader(tcp, "t", "c", 2, 2500, runfor),
        "pub-8": lambda: run_pub(tcp, "t", 200, 8, runfor),
    }
    for path, batch in (("pub", 1), ("mpub", 200)):
        for close in (False, True):
            for conns in (4, 16) if batch == 1 else (16,):
                name = f"http-{path}{'-close' if close else ''}-{conns}"
                table[name] = functools.partial(
                    run_http_pub, http, "t", 200, conns, runfor, batch, close
                )
    return table


NAMES = tuple(loads((ALLOWED_HOST, 0), (ALLOWED_HOST, 0), 1.0))


def parse_only(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if unknown := [name for name in names if name not in NAMES]:
        raise argparse.ArgumentTypeError(
            f"unknown generator(s) {', '.join(unknown)}; choose from {', '.join(NAMES)}"
        )
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runfor", type=parse_duration, default=3.0, help="per generator")
    parser.add_argument("--fake-workers", type=positive, default=20, help="per listener")
    parser.add_argument("--only", type=parse_only, help="comma-separated generator names")
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    cpus = pick_cpus(args.no_pin)
    fake = FakeNsqd(args.fake_workers, cpus[0] if cpus else None)
    if cpus:
        os.sched_setaffinity(0, {cpus[1]})
    rows: list[dict[str, Any]] = []
    try:
        for name, load in loads(fake.tcp, fake.http, args.runfor).items():
            if args.only and name not in args.only:
                continue
            result = load()
            cores = result.generator_cpu_seconds / result.seconds if result.seconds else 0.0
            rows.append({"generator": name, **result.as_dict(), "generator_cores": cores})
            if not args.json:
                print(f"{name}: {result.line()}", flush=True)
    finally:
        fake.stop()
    if args.json:
        print(json.dumps(rows, indent=2))
    failed = any(row["failures"] for row in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
