"""The per-connection hot loops of the load generators: NSQ writer, NSQ reader, HTTP /pub.

Why this shape: the generators must be several times faster than the nsqd they measure, and
every Python step costs 50-500 ns. So each loop owns one blocking socket in its own process (no
event loop, no GIL sharing), the writer re-sends one pre-encoded MPUB buffer, the reader parses
all frames of one large ``recv_into`` with ``struct.unpack_from`` and answers them with a single
joined FIN write, and the HTTP client re-sends one pre-built request. Only the standard NSQ
protocol is spoken, so the same loops measure pnsq and Go's nsqd alike.

Frames from nsqd (integers big-endian)::

    [ size: u32 ][ type: u32 ][ data: size - 4 bytes ]
    type 0 response ("OK", "_heartbeat_", IDENTIFY JSON), 1 error, 2 message, whose data is
    [ timestamp ns: i64 ][ attempts: u16 ][ id: 16 ASCII hex ][ body ]
    so a message id sits at bytes 18..34 of its frame.

Every loop takes ``arrive``: it reports "handshake done", waits for the common start signal
and returns the start time, so no connection's set-up is counted in the measurement.
"""

from __future__ import annotations

import json
import socket
import struct
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, MutableSequence

    Arrive = Callable[[], float]

MAGIC_V2 = b"  V2"
FRAME_RESPONSE = 0
FRAME_ERROR = 1
FRAME_MESSAGE = 2
HEARTBEAT = b"_heartbeat_"
NON_FATAL_ERRORS = (b"E_FIN_FAILED", b"E_REQ_FAILED", b"E_TOUCH_FAILED")
ID_START = 18
ID_END = 34
RECV_BYTES = 1 << 20
IDLE_STOP_S = 2.0
POLL_S = 0.1
IO_TIMEOUT_S = 10.0
_HEADER = struct.Struct(">II")
_SIZE = struct.Struct(">I")


class LoadError(Exception):
    """nsqd refused or broke the workload: error frame, closed connection, unexpected reply."""


@dataclass(frozen=True)
class WorkerReport:
    """What one connection did; ``started``/``finished`` are ``time.monotonic()`` values."""

    count: int = 0
    errors: int = 0
    started: float = 0.0
    finished: float = 0.0
    cpu_seconds: float = 0.0
    first_error: str = ""
    failure: str = ""
    worst_round_trip: float = 0.0  # writer: one MPUB to its OK; http-pub: one request


def connect(address: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(address, timeout=IO_TIMEOUT_S)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def encode_mpub(topic: str, body: bytes, count: int) -> bytes:
    """``MPUB <topic>\\n[body size][count]([size][message])*count``, built once per run."""
    one = _SIZE.pack(len(body)) + body
    return b"MPUB %s\n%s%s" % (
        topic.encode(),
        _HEADER.pack(4 + len(one) * count, count),
        one * count,
    )


class FrameReader:
    """Buffered frame reader for the control path (handshakes, one reply per MPUB)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = bytearray()

    def read(self) -> tuple[int, bytes]:
        buf = self._buf
        while True:
            if len(buf) >= 8:
                size, kind = _HEADER.unpack_from(buf)
                if size < 4:
                    raise LoadError(f"malformed frame size {size}")
                if len(buf) >= 4 + size:
                    data = bytes(buf[8 : 4 + size])
                    del buf[: 4 + size]
                    return kind, data
            chunk = self._sock.recv(65536)
            if not chunk:
                raise LoadError("connection closed by nsqd")
            buf += chunk

    def response(self) -> bytes:
        """The next response frame's data, answering heartbeats and raising on errors."""
        while True:
            kind, data = self.read()
            if kind == FRAME_RESPONSE and data == HEARTBEAT:
                self._sock.sendall(b"NOP\n")
            elif kind == FRAME_RESPONSE:
                return data
            elif kind == FRAME_ERROR:
                raise LoadError(data.decode(errors="replace"))
            else:
                raise LoadError(f"unexpected frame type {kind}")

    def take_buffer(self) -> bytes:
        data = bytes(self._buf)
        self._buf.clear()
        return data


def writer_loop(
    address: tuple[str, int], mpub: bytes, batch: int, runfor: float, arrive: Arrive
) -> WorkerReport:
    """go bench_writer's pubWorker: MPUB one batch, wait for OK, repeat until ``runfor``."""
    with connect(address) as sock:
        sock.sendall(MAGIC_V2)
        frames = FrameReader(sock)
        started = now = arrive()
        cpu = time.process_time()
        end = started + runfor
        count = 0
        worst = 0.0
        while now < end:
            sock.sendall(mpub)
            reply = frames.response()
            if reply != b"OK":
                raise LoadError(f"MPUB answered {reply!r}")
            count += batch
            now, sent = time.monotonic(), now
            worst = max(worst, now - sent)
        cpu = time.process_time() - cpu
        return WorkerReport(count, 0, started, now, cpu, worst_round_trip=worst)


def _subscribe(sock: socket.socket, topic: str, channel: str, rdy: int) -> tuple[bytes, int]:
    """Magic, IDENTIFY (feature negotiation), SUB; returns leftover bytes and the usable RDY."""
    identify = json.dumps(
        {
            "client_id": "bench_reader",
            "hostname": "bench_reader",
            "user_agent": "pnsq-bench/1.0",
            "feature_negotiation": True,
        }
    ).encode()
    sock.sendall(
        b"%sIDENTIFY\n%s%sSUB %s %s\n"
        % (MAGIC_V2, _SIZE.pack(len(identify)), identify, topic.encode(), channel.encode())
    )
    frames = FrameReader(sock)
    negotiated = frames.response()
    if negotiated.startswith(b"{"):
        rdy = min(rdy, int(json.loads(negotiated).get("max_rdy_count", rdy)))
    sub = frames.response()
    if sub != b"OK":
        raise LoadError(f"SUB answered {sub!r}")
    return frames.take_buffer(), rdy


class MessageBuffer:
    """The reader's receive buffer: one big ``recv_into``, then every complete frame at once."""

    def __init__(self, pending: bytes) -> None:
        self._buf = bytearray(max(RECV_BYTES, 2 * len(pending)))
        self._buf[: len(pending)] = pending
        self._have = len(pending)
        self._view = memoryview(self._buf)

    def receive(self, sock: socket.socket) -> int:
        received = sock.recv_into(self._view[self._have :])
        self._have += received
        return received

    def scan(self) -> tuple[list[bytearray], bool, list[bytes]]:
        """(message ids, heartbeat seen, error payloads) of the complete frames; keeps the rest."""
        buf, have, unpack = self._buf, self._have, _HEADER.unpack_from
        ids: list[bytearray] = []
        errors: list[bytes] = []
        heartbeat = False
        pos = 0
        while have - pos >= 8:
            size, kind = unpack(buf, pos)
            stop = pos + 4 + size
            if stop > have:
                break
            if kind == FRAME_MESSAGE:
                ids.append(buf[pos + ID_START : pos + ID_END])
            elif kind == FRAME_RESPONSE:
                heartbeat = heartbeat or buf[pos + 8 : stop] == HEARTBEAT
            else:
                errors.append(bytes(buf[pos + 8 : stop]))
            pos = stop
        self._keep(pos)
        return ids, heartbeat, errors

    def _keep(self, pos: int) -> None:
        """Move the incomplete frame at ``pos`` to the front, growing for frames > buffer."""
        have = self._have = self._have - pos
        if not have:
            return
        need = 4 + _SIZE.unpack_from(self._buf, pos)[0] if have >= 4 else 8
        if need > len(self._buf):
            self._view.release()
            self._buf = self._buf[pos : pos + have] + bytearray(2 * need)
            self._view = memoryview(self._buf)
        else:
            self._buf[:have] = self._buf[pos : pos + have]


def reader_loop(
    address: tuple[str, int],
    topic: str,
    channel: str,
    rdy: int,
    runfor: float,
    progress: tuple[MutableSequence[int], int, int],
    arrive: Arrive,
) -> WorkerReport:
    """go bench_reader's subWorker: SUB, RDY, FIN everything; stops at ``runfor``, after
    ``IDLE_STOP_S`` without messages, or when all readers together reached the limit.

    ``progress`` is (shared per-worker counts, this worker's slot, limit; 0 = none).
    """
    counts, slot, limit = progress
    with connect(address) as sock:
        pending, rdy = _subscribe(sock, topic, channel, rdy)
        started = last = arrive()
        cpu = time.process_time()
        end = started + runfor
        sock.sendall(b"RDY %d\n" % rdy)
        sock.settimeout(POLL_S)
        stream = MessageBuffer(pending)
        count = failed = 0
        first_error = ""
        while True:
            try:
                received = stream.receive(sock)
            except TimeoutError:
                received = -1
            now = time.monotonic()
            if received == 0:
                raise LoadError("connection closed by nsqd")
            if received > 0:
                ids, heartbeat, errors = stream.scan()
                if ids:
                    sock.sendall(b"FIN " + b"\nFIN ".join(ids) + b"\n")
                    count += len(ids)
                    last = now
                if heartbeat:
                    sock.sendall(b"NOP\n")
                if errors:
                    failed += len(errors)
                    first_error = first_error or _non_fatal(errors)
            if limit:
                counts[slot] = count
            if now >= end or now - last >= IDLE_STOP_S or (limit and sum(counts) >= limit):
                break
        cpu = time.process_time() - cpu
        return WorkerReport(count, failed, started, last, cpu, first_error)


def _non_fatal(errors: list[bytes]) -> str:
    """The first error's text; raises on a fatal one (anything but E_FIN/REQ/TOUCH_FAILED)."""
    for error in errors:
        if not error.startswith(NON_FATAL_ERRORS):
            raise LoadError(error.decode(errors="replace"))
    return errors[0].decode(errors="replace")


def http_pub_loop(
    address: tuple[str, int], topic: str, body: bytes, runfor: float, arrive: Arrive
) -> WorkerReport:
    """One POST /pub at a time on a keep-alive connection (no pipelining)."""
    request = b"POST /pub?topic=%s HTTP/1.1\r\nHost: %s:%d\r\nContent-Length: %d\r\n\r\n%s" % (
        topic.encode(),
        address[0].encode(),
        address[1],
        len(body),
        body,
    )
    client = HttpClient(address)
    try:
        started = now = arrive()
        cpu = time.process_time()
        end = started + runfor
        count = errors = 0
        first_error = ""
        worst = 0.0
        while now < end:
            client.sock.sendall(request)
            status, reply, keep_alive = client.read_response()
            if status == 200:
                count += 1
            else:
                errors += 1
                first_error = first_error or f"HTTP {status} {reply[:200]!r}"
            if not keep_alive:
                client.reconnect()
            now, sent = time.monotonic(), now
            worst = max(worst, now - sent)
        cpu = time.process_time() - cpu
        return WorkerReport(count, errors, started, now, cpu, first_error, worst_round_trip=worst)
    finally:
        client.sock.close()


class HttpClient:
    """Just enough HTTP/1.1 to read one response: Content-Length or chunked bodies."""

    def __init__(self, address: tuple[str, int]) -> None:
        self._address = address
        self.sock = connect(address)
        self._buf = bytearray()

    def reconnect(self) -> None:
        self.sock.close()
        self.sock = connect(self._address)
        self._buf.clear()

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise LoadError("HTTP connection closed by nsqd")
        self._buf += chunk

    def _take(self, start: int, length: int) -> bytes:
        while len(self._buf) < start + length:
            self._fill()
        data = bytes(self._buf[start : start + length])
        del self._buf[: start + length]
        return data

    def _line(self) -> bytes:
        while (end := self._buf.find(b"\r\n")) < 0:
            self._fill()
        return self._take(0, end + 2)[:-2]

    def read_response(self) -> tuple[int, bytes, bool]:
        """(status, body, keep_alive) of the next response."""
        while (head_end := self._buf.find(b"\r\n\r\n")) < 0:
            self._fill()
        head = bytes(self._buf[:head_end]).lower()
        del self._buf[: head_end + 4]
        status = int(head[9:12])
        keep_alive = b"\r\nconnection: close" not in head and (
            head.startswith(b"http/1.1") or b"\r\nconnection: keep-alive" in head
        )
        if (at := head.find(b"\r\ncontent-length:")) >= 0:
            line_end = head.find(b"\r\n", at + 2)
            length = int(head[at + 17 : line_end if line_end >= 0 else len(head)])
            return status, self._take(0, length), keep_alive
        if b"\r\ntransfer-encoding: chunked" in head:
            return status, self._read_chunked(), keep_alive
        return status, b"", False  # body delimited by close: drop the connection

    def _read_chunked(self) -> bytes:
        parts = []
        while size := int(self._line().split(b";")[0], 16):
            parts.append(self._take(0, size + 2)[:-2])
        while self._line():  # trailers, up to the empty line
            pass
        return b"".join(parts)
