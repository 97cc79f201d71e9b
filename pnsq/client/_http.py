"""A tiny HTTP/1.1 client (h11 over anyio) for nsqd's /pub and lookupd's /lookup.

One keep-alive connection; a request that fails on a reused connection is retried once on a
fresh one only when nothing of the response had arrived (the server closed an idle connection).
"""

from __future__ import annotations

import anyio
import anyio.abc
import h11

from .errors import NSQConnectionError


class HTTPConnection:
    def __init__(self, host: str, port: int, timeout: float = 5.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._stream: anyio.abc.SocketStream | None = None
        self._conn = h11.Connection(h11.CLIENT)
        self._lock = anyio.Lock()

    async def request(self, method: str, target: str, body: bytes = b"") -> tuple[int, bytes]:
        """``(status, body)``; NSQConnectionError when the server cannot be reached."""
        async with self._lock:
            # A kept-alive connection the server has since closed fails at once: one retry on a
            # fresh connection, never after a timeout (the request may have been taken).
            retry = self._stream is not None
            while True:
                try:
                    with anyio.fail_after(self.timeout):
                        return await self._exchange(method, target, body)
                except (
                    OSError,
                    TimeoutError,
                    anyio.EndOfStream,
                    anyio.BrokenResourceError,
                    h11.ProtocolError,
                ) as exc:
                    await self.aclose()
                    if not retry or isinstance(exc, TimeoutError):
                        raise NSQConnectionError(f"HTTP {self.host}:{self.port}: {exc!r}") from exc
                    retry = False

    async def _exchange(self, method: str, target: str, body: bytes) -> tuple[int, bytes]:
        if self._stream is None:
            self._stream = await anyio.connect_tcp(self.host, self.port)
            self._conn = h11.Connection(h11.CLIENT)
        headers = [("Host", f"{self.host}:{self.port}"), ("Content-Length", str(len(body)))]
        data = self._conn.send(h11.Request(method=method, target=target, headers=headers))
        data += self._conn.send(h11.Data(data=body)) if body else b""
        data += self._conn.send(h11.EndOfMessage())
        await self._stream.send(data)
        status, chunks = 0, []
        while True:
            event = self._conn.next_event()
            if event is h11.NEED_DATA:
                self._conn.receive_data(await self._stream.receive(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise anyio.EndOfStream
        if self._conn.our_state is h11.DONE and self._conn.their_state is h11.DONE:
            self._conn.start_next_cycle()
        else:
            await self.aclose()
        return status, b"".join(chunks)

    async def aclose(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            with anyio.CancelScope(shield=True):
                await stream.aclose()
