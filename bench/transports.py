#!/usr/bin/env python3
"""What TLS, snappy and deflate cost an nsqd: publish and consume rates against plain TCP.

    .venv/bin/python bench/transports.py [--batches 500] [--nsqd-cmd "python -m pnsq nsqd"]

Starts one nsqd process (a trustme certificate, the certificate's CA trusted by the client) on
127.0.0.1 and, for each transport in turn (plain, tls, snappy, deflate), on a topic of its own:
one connection publishes ``--batches`` MPUBs of 200 x 200 B messages (a window of 4 in flight),
then one connection consumes them all (RDY 2500, a FIN per message, sent once per read). It
prints msg/s for each phase and the ratio to plain. The client side is trio with pnsq.wire's
encoders and codecs in this process, the server a separate process, so the two share the
machine's cores. The target: TLS and snappy at least 0.7x plain.
"""

from __future__ import annotations

import argparse
import json
import shlex
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio
import trustme

from pnsq.nsqd.compression import CompressedStream
from pnsq.wire import (
    FRAME_TYPE_MESSAGE,
    FrameReader,
    encode_fin,
    encode_identify,
    encode_mpub,
    encode_rdy,
    encode_sub,
)

MODES = ("plain", "tls", "snappy", "deflate")
BATCH, SIZE, WINDOW = 200, 200, 4


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Conn:
    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.frames = FrameReader()

    async def frame(self) -> tuple[int, bytes]:
        while (frame := self.frames.next_frame()) is None:
            data = await self.stream.receive_some(256 * 1024)
            if not data:
                raise ConnectionError("nsqd closed the connection")
            self.frames.receive_data(bytes(data))
        return frame

    async def response(self) -> bytes:
        frame_type, data = await self.frame()
        if frame_type != 0:
            raise ConnectionError(data.decode())
        return data


async def connect(port: int, mode: str, context: ssl.SSLContext) -> Conn:
    stream: trio.abc.Stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(b"  V2")
    key = {"plain": "tls_v1", "tls": "tls_v1"}.get(mode, mode)
    features = {"feature_negotiation": True, key: mode != "plain"}
    await stream.send_all(encode_identify(features))
    # read exactly the response frame: what follows belongs to the upgraded stream
    head = await _exactly(stream, 4)
    body = await _exactly(stream, int.from_bytes(head, "big"))
    assert json.loads(body[4:])[key] is (mode != "plain")
    if mode == "tls":
        stream = trio.SSLStream(stream, context, server_hostname="127.0.0.1")
        await stream.do_handshake()
    elif mode == "snappy":
        stream = CompressedStream.snappy(stream)
    elif mode == "deflate":
        stream = CompressedStream.deflate(stream, 6)
    conn = Conn(stream)
    if mode != "plain":
        assert await conn.response() == b"OK"
    return conn


async def _exactly(stream: trio.abc.Stream, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = await stream.receive_some(n - len(data))
        if not chunk:
            raise ConnectionError("nsqd closed the connection")
        data += chunk
    return data


async def publish(port: int, mode: str, context: ssl.SSLContext, batches: int) -> float:
    conn = await connect(port, mode, context)
    command = encode_mpub(mode, [b"m" * SIZE] * BATCH)
    start = time.perf_counter()
    sent = answered = 0
    while answered < batches:
        while sent < batches and sent - answered < WINDOW:
            await conn.stream.send_all(command)
            sent += 1
        assert await conn.response() == b"OK"
        answered += 1
    elapsed = time.perf_counter() - start
    await conn.stream.aclose()
    return batches * BATCH / elapsed


async def consume(port: int, mode: str, context: ssl.SSLContext, total: int) -> float:
    conn = await connect(port, mode, context)
    await conn.stream.send_all(encode_sub(mode, "c"))
    assert await conn.response() == b"OK"
    start = time.perf_counter()
    await conn.stream.send_all(encode_rdy(2500))
    got = 0
    while got < total:
        fins = bytearray()
        frame_type, data = await conn.frame()
        while True:
            if frame_type == FRAME_TYPE_MESSAGE:
                fins += encode_fin(data[10:26])
                got += 1
            frame = conn.frames.next_frame()
            if frame is None:
                break
            frame_type, data = frame
        await conn.stream.send_all(bytes(fins))
    elapsed = time.perf_counter() - start
    await conn.stream.aclose()
    return total / elapsed


async def measure(
    port: int, context: ssl.SSLContext, batches: int
) -> dict[str, tuple[float, float]]:
    results = {}
    await publish(port, "plain", context, batches // 4)  # warm up nsqd before measuring
    await consume(port, "plain", context, batches // 4 * BATCH)
    for mode in MODES:
        pub = await publish(port, mode, context, batches)
        sub = await consume(port, mode, context, batches * BATCH)
        results[mode] = (pub, sub)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=500, help="MPUBs per transport")
    parser.add_argument("--nsqd-cmd", default=f"{sys.executable} -m pnsq nsqd")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        ca = trustme.CA()
        server = ca.issue_cert("127.0.0.1")
        cert, key = Path(data, "cert.pem"), Path(data, "key.pem")
        server.cert_chain_pems[0].write_to_path(str(cert))
        server.private_key_pem.write_to_path(str(key))
        context = ssl.create_default_context()
        ca.configure_trust(context)
        port = free_port()
        command = [
            *shlex.split(args.nsqd_cmd),
            f"--tcp-address=127.0.0.1:{port}",
            "--http-address=",
            "--https-address=",
            f"--data-path={data}",
            f"--tls-cert={cert}",
            f"--tls-key={key}",
            "--mem-queue-size=10000000",
            "--log-level=warn",
        ]
        process = subprocess.Popen(command)
        try:
            _wait_listening(port)
            results = trio.run(measure, port, context, args.batches)
        finally:
            process.terminate()
            process.wait(20)
    plain_pub, plain_sub = results["plain"]
    print(
        f"{'transport':10} {'publish msg/s':>14} {'x plain':>8} {'consume msg/s':>14} {'x plain':>8}"
    )
    for mode, (pub, sub) in results.items():
        print(f"{mode:10} {pub:14,.0f} {pub / plain_pub:8.2f} {sub:14,.0f} {sub / plain_sub:8.2f}")


def _wait_listening(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)  # polling a process we started; nothing to wait on instead
    raise SystemExit("nsqd did not start listening within 20 s")


if __name__ == "__main__":
    main()
