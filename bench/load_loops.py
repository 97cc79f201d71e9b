"""The per-connection hot loops of the TCP load generators: NSQ writer (MPUB or PUB), reader.

Why this shape: the generators must be several times faster than the nsqd they measure, and
every Python step costs 50-500 ns. So each loop owns one blocking socket in its own process (no
event loop, no GIL sharing), the writer re-sends one pre-encoded MPUB (or PUB) buffer and times
each round trip into a preallocated array (latency.py), the reader parses all frames of one
large ``recv_into`` with ``struct.unpack_from`` and answers them with a single joined FIN write.
Only the standard NSQ protocol is spoken, so the same loops measure pnsq and Go's nsqd alike.
The HTTP loops are in http_loops.py.

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

from latency import Samples

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
OK_FRAME = _HEADER.pack(6, FRAME_RESPONSE) + b"OK"
OK_READ = 4096  # a small read: an OK, or a heartbeat and an OK


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
    latencies: bytes = b""  # round trips in seconds, float32 (latency.Samples.to_bytes)


def connect(address: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(address, timeout=IO_TIMEOUT_S)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def encode_pub(topic: str, body: bytes) -> bytes:
    """``PUB <topic>\\n[size][body]``, built once per run."""
    return b"PUB %s\n%s%s" % (topic.encode(), _SIZE.pack(len(body)), body)


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

    def ok(self, received: bytes) -> bool:
        """Whether ``received`` (one recv) is exactly one OK with nothing pending: the writer's
        fast path, one comparison instead of a parse. Otherwise it is kept for ``response``."""
        if received == OK_FRAME and not self._buf:
            return True
        if not received:
            raise LoadError("connection closed by nsqd")
        self._buf += received
        return False


def writer_loop(
    address: tuple[str, int],
    command: bytes,
    batch: int,
    runfor: float,
    arrive: Arrive,
    *,
    limit: int = 0,
) -> WorkerReport:
    """go bench_writer's pubWorker: send ``command`` (an MPUB of ``batch`` messages, or a PUB
    with ``batch`` 1), wait for OK, repeat until ``runfor`` or ``limit`` commands (0 = none)."""
    with connect(address) as sock:
        sock.sendall(MAGIC_V2)
        frames = FrameReader(sock)
        samples = Samples()
        started = now = arrive()
        cpu = time.process_time()
        end = started + runfor
        sent_commands = 0
        worst = 0.0
        while now < end and (not limit or sent_commands < limit):
            sock.sendall(command)
            if not frames.ok(sock.recv(OK_READ)) and (reply := frames.response()) != b"OK":
                raise LoadError(f"{command[:4].strip()!r} answered {reply!r}")
            sent_commands += 1
            now, sent = time.monotonic(), now
            samples.add(now - sent)
            worst = max(worst, now - sent)
        cpu = time.process_time() - cpu
        return WorkerReport(
            sent_commands * batch,
            0,
            started,
            now,
            cpu,
            worst_round_trip=worst,
            latencies=samples.to_bytes(),
        )


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
