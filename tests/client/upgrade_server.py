"""A scripted nsqd that does NSQ's side of the IDENTIFY upgrades, on a real socket in a thread.

It reads the magic and IDENTIFY in plain text, answers the JSON it is told to, then does what
nsqd does (protocol_v2.go's IDENTIFY): the server side of the TLS handshake and an ``OK`` inside
it, then the compression wrap and a compressed ``OK``. After that it expects the exact bytes of
each step of its script (decompressed, decrypted) and answers that step's frames. Everything it
saw is recorded, so a test can check the byte sequence the client sent at each stage.
Python's ssl and pnsq.wire's codecs do the work; the frames are built by hand from NSQ's layout.
"""

from __future__ import annotations

import json
import socket
import ssl
import struct
import threading
from dataclasses import dataclass, field
from typing import Any, Self

from pnsq.wire import DeflateCodec, SnappyCodec


def frame(frame_type: int, data: bytes) -> bytes:
    return struct.pack(">ii", len(data) + 4, frame_type) + data


def response(data: bytes) -> bytes:
    return frame(0, data)


def error(text: bytes) -> bytes:
    return frame(1, text)


OK = response(b"OK")


class Raw(bytes):
    """An answer sent as it is, not through the compression: garbage on a compressed stream."""


@dataclass
class Script:
    reply: dict[str, Any]  # the IDENTIFY reply's JSON (tls_v1, snappy, deflate, auth_required)
    steps: list[tuple[bytes, bytes]] = field(default_factory=list)  # (expected, answer)
    tls: ssl.SSLContext | None = None
    instead_of_tls: bytes = b""  # sent after the reply in place of the handshake


class UpgradeServer:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(10)
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.plain = b""  # what the client sent before any upgrade
        self.identify: dict[str, Any] = {}
        self.upgraded = b""  # what it sent after the upgrades (decrypted, decompressed)
        self.tls_version: str | None = None
        self.failure: BaseException | None = None
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.listener.close()
        self._thread.join(10)

    def _run(self) -> None:
        try:
            conn, _ = self.listener.accept()
            with conn:
                conn.settimeout(5)
                self._serve(conn)
        except BaseException as exc:  # reported by the test through self.failure
            self.failure = exc
        finally:
            self.done.set()

    def _serve(self, conn: socket.socket) -> None:
        sock: socket.socket = conn
        self.plain = _recv_exact(sock, 4 + len(b"IDENTIFY\n") + 4)
        size = struct.unpack(">i", self.plain[-4:])[0]
        body = _recv_exact(sock, size)
        self.plain += body
        self.identify = json.loads(body)
        reply = self.script.reply
        sock.sendall(response(json.dumps(reply).encode()))
        if self.script.instead_of_tls:
            sock.sendall(self.script.instead_of_tls)
        elif reply.get("tls_v1"):
            assert self.script.tls is not None
            sock = self.script.tls.wrap_socket(sock, server_side=True)
            self.tls_version = sock.version()  # type: ignore[attr-defined]
            sock.sendall(OK)
        codec: SnappyCodec | DeflateCodec | None = None
        if reply.get("snappy"):
            codec = SnappyCodec()
        elif reply.get("deflate"):
            codec = DeflateCodec(int(reply.get("deflate_level", 6)))
        if codec is not None:
            sock.sendall(codec.compress(OK))
        buf = b""
        for expected, answer in self.script.steps:
            while len(buf) < len(expected):
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError(f"client closed; expected {expected!r}, got {buf!r}")
                buf += codec.decompress(data) if codec is not None else data
            got, buf = buf[: len(expected)], buf[len(expected) :]
            self.upgraded += got
            if got != expected:
                raise AssertionError(f"expected {expected!r}, got {got!r}")
            if answer:
                raw = codec is None or isinstance(answer, Raw)
                sock.sendall(answer if raw else codec.compress(answer))
        # Hold the connection until the client closes it.
        while sock.recv(65536):
            pass


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError(f"client closed after {data!r}")
        data += chunk
    return data
