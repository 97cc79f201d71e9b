"""Plain TCP for the daemons' HTTP server: direct, non-blocking socket calls.

A trio stream operation costs ~12 us of scheduler work (PERFORMANCE.md) even when the data is
already there, about as much as a whole ``POST /pub`` otherwise: so a plain connection reads
and writes its socket itself, and asks trio to wait only when a call would block. So that one
busy client cannot starve the others, a connection whose reads never block yields to trio
every ``_STREAK`` reads. ``serve_at_once`` answers what came with a new connection without a
task (``http_accept``).
"""

from __future__ import annotations

import socket
from typing import TypeVar

import trio

from .http_connection import LINGER_BYTES, RECEIVE_SIZE, HTTPConnection
from .http_messages import Router

__all__ = ["SocketConnection"]

C = TypeVar("C")

_STREAK = 16  # reads in a row that found data before the connection yields to trio


class SocketConnection(HTTPConnection[C]):
    """Plain TCP: direct socket calls; trio is asked to wait only when a call would block."""

    def __init__(
        self, context: C, router: Router[C], remote: str, idle_timeout: float, sock: socket.socket
    ) -> None:
        super().__init__(context, router, remote, idle_timeout)
        self.sock = sock
        self._streak = 0

    async def run(self) -> None:
        try:
            await super().run()
        except OSError:
            pass  # the client went away (reset, timed out): trio's streams say the same

    def serve_at_once(self) -> bool:
        """Serve what has already arrived, as far as that needs no wait; True when the
        connection is then done with and may simply be closed (no ``run`` needed).

        A client that sends its request as soon as it connects, and asks to close after the
        answer, is served without a task of its own."""
        try:
            data = self.sock.recv(RECEIVE_SIZE)
        except BlockingIOError:
            return False
        if not data:
            return True
        self.take(data)
        if self.pending is None and self.out:
            try:
                del self.out[: self.sock.send(self.out)]
            except BlockingIOError:
                pass
        return self.closing and not self.linger and not self.out and self.pending is None

    async def _receive(self) -> bytes:
        sock = self.sock
        try:
            if not self.busy:
                raise BlockingIOError
            data = sock.recv(RECEIVE_SIZE)
        except BlockingIOError:
            pass
        else:
            self._streak += 1
            if self._streak >= _STREAK:  # a client that never lets us block: others' turn
                self._streak = 0
                self._touch()
                await trio.lowlevel.checkpoint()
            return data
        self._streak = 0
        while True:
            self._touch()
            await trio.lowlevel.wait_readable(sock)
            try:
                return sock.recv(RECEIVE_SIZE)
            except BlockingIOError:
                continue

    async def _send(self, data: bytearray) -> None:
        sock = self.sock
        try:
            sent = sock.send(data)
        except BlockingIOError:
            sent = 0
        if sent == len(data):
            return
        with memoryview(data) as view:
            while sent < len(data):
                self._touch()
                await trio.lowlevel.wait_writable(sock)
                try:
                    sent += sock.send(view[sent:])
                except BlockingIOError:
                    continue

    async def _linger(self) -> None:
        self.sock.shutdown(socket.SHUT_WR)
        received = 0
        while received < LINGER_BYTES and (data := await self._receive()):
            received += len(data)
