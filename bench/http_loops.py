"""The per-connection loop of the HTTP load generator: ``POST /pub`` or ``/mpub``, timed.

Why this shape: as load_loops.py, one blocking socket per process re-sending one pre-built
request, reading only the status line, ``Content-Length`` (or chunked encoding) and
``Connection``. Each round trip is timed into a preallocated array (latency.py). Without
keep-alive the request says ``Connection: close`` and every request opens its own TCP
connection, whose connect is part of the request's latency, as it would be for such a client.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from latency import Samples
from load_loops import LoadError, WorkerReport, connect

if TYPE_CHECKING:
    import socket

    from load_loops import Arrive


def http_request(
    address: tuple[str, int], topic: str, body: bytes, batch: int, close: bool
) -> bytes:
    """``POST /pub`` of ``body``, or with ``batch`` > 1 ``POST /mpub`` of ``batch`` copies
    separated by newlines (NSQ's default, non-binary /mpub body)."""
    path, payload = (b"/pub", body) if batch == 1 else (b"/mpub", b"\n".join([body] * batch))
    connection = b"Connection: close\r\n" if close else b""
    return b"POST %s?topic=%s HTTP/1.1\r\nHost: %s:%d\r\n%sContent-Length: %d\r\n\r\n%s" % (
        path,
        topic.encode(),
        address[0].encode(),
        address[1],
        connection,
        len(payload),
        payload,
    )


def http_loop(
    address: tuple[str, int], request: bytes, close: bool, runfor: float, arrive: Arrive
) -> WorkerReport:
    """One request at a time (no pipelining) until ``runfor``; a new connection per request
    when ``close``, else one keep-alive connection (re-opened only if nsqd closes it)."""
    client = HttpClient(address)
    try:
        samples = Samples()
        started = now = arrive()
        cpu = time.process_time()
        end = started + runfor
        count = errors = 0
        first_error = ""
        worst = 0.0
        while now < end:
            client.sock().sendall(request)
            status, reply, keep_alive = client.read_response()
            if status == 200:
                count += 1
            else:
                errors += 1
                first_error = first_error or f"HTTP {status} {reply[:200]!r}"
            if close or not keep_alive:
                client.close()
            now, sent = time.monotonic(), now
            samples.add(now - sent)
            worst = max(worst, now - sent)
        cpu = time.process_time() - cpu
        return WorkerReport(
            count,
            errors,
            started,
            now,
            cpu,
            first_error,
            worst_round_trip=worst,
            latencies=samples.to_bytes(),
        )
    finally:
        client.close()


class HttpClient:
    """Just enough HTTP/1.1 to read one response: Content-Length or chunked bodies."""

    def __init__(self, address: tuple[str, int]) -> None:
        self._address = address
        self._sock: socket.socket | None = connect(address)
        self._buf = bytearray()

    def sock(self) -> socket.socket:
        """The open connection, connecting first when the last one was closed."""
        if self._sock is None:
            self._sock = connect(self._address)
        return self._sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._buf.clear()

    def _fill(self) -> None:
        chunk = self.sock().recv(65536)
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
