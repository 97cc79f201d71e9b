"""A plain TCP client's socket, read and written directly on protocol V2's hot paths.

trio's ``receive_some`` costs two scheduler passes and the caller's cancel scope per read, and
waking the writer task for its ``send_all`` another pass and ~14 us: together ten times the
work of a single PUB. So a connection on a plain socket reads the descriptor itself, waiting in
``trio.lowlevel.wait_readable`` only when it is empty, and its reader writes the answers of a
read itself while the writer is parked. TLS and compressed streams wrap the socket and keep
trio's path (``plain_socket`` gives None for them).

Reads land in one receive buffer per thread (one per nsqd event loop; tests run several nsqds
in threads) and are copied into the connection's command reader at once, before anything else
runs: a fresh 256 KiB bytes object per read, as ``os.read`` makes, costs glibc an mmap and a
munmap (~4 us).
"""

from __future__ import annotations

import os
import threading

import trio

from ..wire.server import CommandReader

RECEIVE_SIZE = 256 * 1024

_local = threading.local()


class PlainSocket:
    def __init__(self, fd: int) -> None:
        self.fd = fd
        # The last read filled the buffer, so more is likely waiting; after a short read the
        # socket was drained and the next read waits for readiness instead of failing once.
        self.more = False
        self._buffer, self._view = _receive_buffer()

    def read_into(self, reader: CommandReader) -> bool | None:
        """One read into ``reader``: True, False once the client has gone, None if nothing."""
        try:
            n = os.readv(self.fd, (self._buffer,))
        except BlockingIOError:
            return None
        except OSError:
            return False  # reset by the client
        reader.receive_data(self._view[:n])
        self.more = n == RECEIVE_SIZE
        return n > 0

    def write(self, data: bytearray) -> int:
        """Send what the socket takes now: the number of bytes (0 when full or broken, which
        the writer's ``send_all`` then finds out)."""
        try:
            return os.write(self.fd, data)
        except OSError:
            return 0


def plain_socket(stream: trio.abc.Stream) -> PlainSocket | None:
    """The socket of a plain TCP stream; None for anything wrapping one."""
    if type(stream) is trio.SocketStream:
        return PlainSocket(stream.socket.fileno())
    return None


def _receive_buffer() -> tuple[bytearray, memoryview]:
    shared: tuple[bytearray, memoryview] | None = getattr(_local, "buffer", None)
    if shared is None:
        buffer = bytearray(RECEIVE_SIZE)
        shared = _local.buffer = (buffer, memoryview(buffer))
    return shared
